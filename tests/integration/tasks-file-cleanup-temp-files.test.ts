// file.cleanup-temp-files as a process on a real tree: exactly the old files go, symlinks are
// never followed out of a root, a root is never removed, a root outside BGTASK_FILE_ROOTS is
// refused with exit 2, a dry run lists instead of removing, and a run stopped mid-sweep reports
// what it removed.
import { existsSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildRunner, runRunner, startRunner, stopAtFirstRemoval } from '../support/runner-process.ts';

const TASK = 'file.cleanup-temp-files';
let base: string;
let allowed: string;
let temp: string;
let outside: string;

beforeAll(() => buildRunner());
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'tasks-cleanup-'));
  bases.push(base);
  allowed = join(base, 'allowed');
  temp = join(allowed, 'tmp');
  outside = join(base, 'outside');
  mkdirSync(temp, { recursive: true });
  mkdirSync(outside);
});
const bases: string[] = [];
afterAll(() => {
  for (const b of bases) rmSync(b, { recursive: true, force: true });
});

const HOUR = 3600_000;
function file(path: string, bytes: number, ageHours: number): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, 'x'.repeat(bytes));
  const t = new Date(Date.now() - ageHours * HOUR);
  utimesSync(path, t, t);
  return path;
}
const age = (path: string, hours: number) => {
  const t = new Date(Date.now() - hours * HOUR);
  utimesSync(path, t, t);
};
const env = (extra: Record<string, string> = {}) => ({ BGTASK_FILE_ROOTS: allowed, ...extra });
const run = (params: object, extra: Record<string, string> = {}, flags: string[] = []) =>
  runRunner(['run', TASK, '--params', JSON.stringify(params), ...flags], env(extra));

describe(TASK, () => {
  it('removes exactly the files older than maxAgeHours, and reports files_removed and bytes_freed', async () => {
    const old = [file(join(temp, 'a.tmp'), 100, 30), file(join(temp, 'sub/b.tmp'), 250, 48), file(join(temp, 'sub/deeper/c.tmp'), 7, 25)];
    const fresh = [file(join(temp, 'new.tmp'), 999, 1), file(join(temp, 'sub/new2.tmp'), 5, 23)];
    mkdirSync(join(temp, 'empty-old'));
    age(join(temp, 'empty-old'), 50); // old and empty: removeEmptyDirs would take it
    const exit = await run({ roots: [temp], maxAgeHours: 24 });
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toEqual({ files_removed: 3, bytes_freed: 357, roots: 1 });
    for (const f of old) expect(existsSync(f)).toBe(false);
    for (const f of fresh) expect(existsSync(f)).toBe(true);
    expect(existsSync(join(temp, 'sub/deeper'))).toBe(true); // empty dirs stay unless asked
    expect(existsSync(join(temp, 'empty-old'))).toBe(true);
  });

  it('never follows a symlink out of the root: links are judged and removed as links, their targets untouched', async () => {
    const victimDir = join(outside, 'victims');
    const victim = file(join(victimDir, 'precious.txt'), 10, 1000);
    const victimFile = file(join(outside, 'single.txt'), 10, 1000);
    symlinkSync(victimDir, join(temp, 'dir-link'));
    const fileLink = join(temp, 'file-link');
    symlinkSync(victimFile, fileLink);
    const oldLink = new Date(Date.now() - 100 * HOUR);
    lutimesSync(fileLink, oldLink, oldLink); // the link itself is old
    const exit = await run({ roots: [temp], maxAgeHours: 24 });
    expect(exit.code, exit.stdout).toBe(0);
    expect(existsSync(victim)).toBe(true);
    expect(existsSync(victimFile)).toBe(true);
    expect(readdirSync(temp).sort()).toEqual(['dir-link']); // the old link went; the new one stayed, unfollowed
    expect(exit.result?.summary?.files_removed).toBe(1);
  });

  it('with removeEmptyDirs, removes subdirectories left empty but never the root', async () => {
    file(join(temp, 'x/y/z/old.tmp'), 1, 50);
    file(join(temp, 'keep/new.tmp'), 1, 1);
    for (const d of ['x/y/z', 'x/y', 'x', 'keep']) age(join(temp, d), 50);
    age(temp, 50);
    const exit = await run({ roots: [temp], removeEmptyDirs: true });
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ files_removed: 1, dirs_removed: 3 });
    expect(readdirSync(temp)).toEqual(['keep']);
    // A root left empty stays.
    rmSync(join(temp, 'keep'), { recursive: true });
    age(temp, 50); // old and empty now, as any other directory removeEmptyDirs takes
    const again = await run({ roots: [temp], removeEmptyDirs: true });
    expect(again.code).toBe(0);
    expect(again.result?.summary).toMatchObject({ dirs_removed: 0 });
    expect(existsSync(temp)).toBe(true);
  });

  it('in a dry run lists what it would remove and removes nothing', async () => {
    const old = file(join(temp, 'old.tmp'), 40, 30);
    file(join(temp, 'new.tmp'), 40, 1);
    const exit = await run({ roots: [temp] }, {}, ['--dry-run']);
    expect(exit.code).toBe(0);
    expect(exit.result?.summary).toEqual({ files_to_remove: 1, bytes_to_free: 40, roots: 1 });
    expect(exit.lines.filter((l) => l.msg === 'would remove').map((l) => l.path)).toEqual([old]);
    expect(existsSync(old)).toBe(true);
  });

  it('stopped mid-sweep (SIGTERM), exits 143 and reports exactly the files it removed until then', async () => {
    // Enough files, removed one at a time, that the sweep is still going when the signal lands.
    const n = 20_000;
    const old = new Date(Date.now() - 30 * HOUR);
    for (let i = 0; i < n; i++) {
      writeFileSync(join(temp, `f${i}.tmp`), 'x'.repeat(10));
      utimesSync(join(temp, `f${i}.tmp`), old, old);
    }
    const runner = startRunner(['run', TASK, '--params', JSON.stringify({ roots: [temp], concurrency: 1 })], env());
    const exit = await stopAtFirstRemoval(runner, temp);
    expect(exit.code, exit.stdout).toBe(143);
    expect(exit.result).toMatchObject({ outcome: 'Interrupted', message: 'received SIGTERM: stopped at a safe point' });
    const removed = n - readdirSync(temp).length;
    expect(removed).toBeGreaterThan(0);
    expect(removed).toBeLessThan(n);
    expect(exit.result?.summary).toEqual({ files_removed: removed, bytes_freed: removed * 10, roots: 1 });
  });

  it('takes its roots from BGTASK_TEMP_ROOTS when no param names them; a missing root is skipped', async () => {
    const old = file(join(temp, 'old.tmp'), 1, 30);
    const exit = await runRunner(['run', TASK], env({ BGTASK_TEMP_ROOTS: `${temp}:${join(allowed, 'not-there')}` }));
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ files_removed: 1, roots: 2, roots_missing: 1 });
    expect(existsSync(old)).toBe(false);
  });

  it.each([
    ['a root outside the allowed roots', () => ({ roots: [outside] })],
    ['a root that climbs out with ..', () => ({ roots: [join(temp, '../../outside')] })],
    ['a root that is a symlink to outside', () => {
      symlinkSync(outside, join(allowed, 'sneaky'));
      return { roots: [join(allowed, 'sneaky')] };
    }],
  ])('refuses %s with exit 2 and touches nothing', async (_what, params) => {
    const victim = file(join(outside, 'precious.txt'), 5, 1000);
    const exit = await run(params());
    expect(exit.code, exit.stdout).toBe(2);
    expect(exit.result?.outcome).toBe('InvalidInput');
    expect(exit.result?.message).toContain('is outside the allowed roots');
    expect(existsSync(victim)).toBe(true);
  });

  it('refuses to run without BGTASK_FILE_ROOTS (exit 2)', async () => {
    const exit = await runRunner(['run', TASK, '--params', JSON.stringify({ roots: [temp] })], {});
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toContain('BGTASK_FILE_ROOTS is not set');
  });
});
