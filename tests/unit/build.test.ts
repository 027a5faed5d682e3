// hack/build.mjs replaces dist/ in place while tests, benchmarks or another build read it: a
// reader polling the entry file and every chunk it imports never finds one missing mid-build.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/platform.ts';

const parent = mkdtempSync(join(tmpdir(), 'bgtask-build-'));
const dist = join(parent, 'dist');
const env = { ...process.env, BGTASK_DIST_DIR: dist };
const entry = join(dist, 'task-runner.mjs');
afterAll(() => rmSync(parent, { recursive: true, force: true }));

function buildSync(): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'hack/build.mjs'), 'task-runner'], { env, encoding: 'utf8', timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
}

/** The chunks a module imports, statically or dynamically (relative paths, as esbuild writes them). */
function importsOf(file: string): string[] {
  const code = readFileSync(file, 'utf8');
  return [...code.matchAll(/(?:from|import\()\s*"(\.\.?\/[^"]+\.mjs)"/g)].map((m) => join(dirname(file), m[1]!));
}

/** Every file the entry reaches through its imports; throws ENOENT when one is missing. */
function reachable(): string[] {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    todo.push(...importsOf(file));
  }
  return [...seen];
}

beforeAll(() => buildSync(), 120_000);

describe('hack/build.mjs', () => {
  it('builds the entry, its chunks and its migrations, and leaves no staging folder', () => {
    expect(reachable().length).toBeGreaterThan(10);
    expect(readdirSync(join(dist, 'migrations'))).toEqual(readdirSync(join(ROOT, 'task-runner/migrations')));
    expect(readdirSync(parent)).toEqual(['dist']);
  });

  it('never leaves a reader without the entry or a chunk it imports while it rebuilds', async () => {
    const build = spawn(process.execPath, [join(ROOT, 'hack/build.mjs'), 'task-runner'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    build.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<number | null>((resolve) => build.on('exit', resolve));
    let exited = false;
    void done.then(() => (exited = true));
    const missing: string[] = [];
    let reads = 0;
    while (!exited) {
      try {
        reachable();
        if (!existsSync(join(dist, 'migrations', '0001_users.sql'))) missing.push('migrations/0001_users.sql');
      } catch (err) {
        missing.push((err as Error).message);
      }
      reads++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await done, stderr).toBe(0);
    expect(missing).toEqual([]);
    // The build took long enough for the reader to look many times, not once before and once after.
    expect(reads).toBeGreaterThan(20);
    expect(readdirSync(parent)).toEqual(['dist']);
  }, 120_000);

  it('keeps a chunk no build references for a grace time, then drops it', () => {
    const chunks = join(dist, 'chunks', 'task-runner');
    const recent = join(chunks, 'left-by-an-older-build-RECENT.mjs');
    const old = join(chunks, 'left-by-an-older-build-OLD.mjs');
    writeFileSync(recent, 'export {};\n');
    writeFileSync(old, 'export {};\n');
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(old, hourAgo, hourAgo);
    buildSync();
    expect(existsSync(recent)).toBe(true);
    expect(existsSync(old)).toBe(false);
    expect(reachable().every((file) => existsSync(file))).toBe(true);
  }, 120_000);
});
