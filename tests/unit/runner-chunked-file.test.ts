// The backup's table dumps are written through openChunkedFile: a full disk must reject the
// write or the close (and so the run), not escape as an uncaught error or hang on 'drain'.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openChunkedFile } from '../../task-runner/tasks/file/user-data-archive.ts';

describe('openChunkedFile', () => {
  it('writes every chunk, waiting when the stream is full', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chunked-'));
    try {
      const file = openChunkedFile(join(dir, 'rows.jsonl'));
      const line = `${JSON.stringify({ x: 'y'.repeat(1000) })}\n`;
      for (let i = 0; i < 200; i++) await file.write(line.repeat(10));
      await file.close();
      expect(readFileSync(join(dir, 'rows.jsonl'), 'utf8').length).toBe(line.length * 2000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!existsSync('/dev/full'))('rejects with ENOSPC on a full disk (/dev/full)', async () => {
    const file = openChunkedFile('/dev/full');
    const run = (async () => {
      for (let i = 0; i < 1000; i++) await file.write('x'.repeat(64 * 1024));
      await file.close();
    })();
    await expect(run).rejects.toMatchObject({ code: 'ENOSPC' });
  });
});
