// sweepOldFiles stops when its run is told to stop, also inside one large flat directory.
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sweepOldFiles } from '../../task-runner/tasks/file/sweep-old-files.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('sweepOldFiles', () => {
  it('stops part-way through a flat directory once aborted', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sweep-abort-'));
    const old = new Date(Date.now() - 3_600_000);
    for (let i = 0; i < 2_000; i++) {
      writeFileSync(join(dir, `f${i}`), '');
      utimesSync(join(dir, `f${i}`), old, old);
    }
    const stop = new AbortController();
    let removed = 0;
    const sweep = sweepOldFiles(dir, {
      cutoffMs: Date.now() - 60_000,
      dryRun: false,
      concurrency: 4,
      removeEmptyDirs: false,
      signal: stop.signal,
      onFile: () => {
        if (++removed === 100) stop.abort(new Error('soft timeout'));
      },
      onError: (path, err) => {
        throw new Error(`unexpected error at ${path}`, { cause: err });
      },
    });
    await expect(sweep).rejects.toThrow('soft timeout');
    // The few already in flight when it stopped finish; the rest stay.
    expect(removed).toBeLessThan(120);
    expect(readdirSync(dir).length).toBeGreaterThan(1_880);
  });
});
