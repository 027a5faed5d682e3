// file.cleanup-temp-files on 100,000 old files against `find <root> -type f -mmin +N -delete` on an
// identical tree (made with cp -a, mtimes kept). Figures are printed, not asserted.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { report } from '../support/bench-report.ts';
import { buildRunner, runRunner } from '../support/runner-process.ts';

const FILES = 100_000;
const DIRS = 100;
let base: string;

beforeAll(() => {
  buildRunner();
  base = mkdtempSync(join(tmpdir(), 'bench-cleanup-'));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

function makeTree(root: string): void {
  for (let d = 0; d < DIRS; d++) {
    const dir = join(root, `d${d}`, `sub${d % 7}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES / DIRS; f++) writeFileSync(join(dir, `f${f}.tmp`), 'temporary');
  }
  // Two days old, set in bulk.
  execFileSync('find', [root, '-type', 'f', '-exec', 'touch', '-d', '2 days ago', '{}', '+']);
}
const countFiles = (root: string) => Number(execFileSync('sh', ['-c', `find '${root}' -type f | wc -l`], { encoding: 'utf8' }).trim());

it(`removes ${FILES} old files, compared with find -delete`, async () => {
  const ours = join(base, 'ours');
  const theirs = join(base, 'theirs');
  makeTree(ours);
  execFileSync('cp', ['-a', ours, theirs]);
  expect(countFiles(ours)).toBe(FILES);
  expect(countFiles(theirs)).toBe(FILES);
  execFileSync('sync');

  const findStart = performance.now();
  execFileSync('find', [theirs, '-type', 'f', '-mmin', `+${24 * 60}`, '-delete']);
  const findS = (performance.now() - findStart) / 1000;
  expect(countFiles(theirs)).toBe(0);

  const started = performance.now();
  const exit = await runRunner(['run', 'file.cleanup-temp-files', '--params', JSON.stringify({ roots: [ours], maxAgeHours: 24 })], { BGTASK_FILE_ROOTS: base });
  const wallS = (performance.now() - started) / 1000;
  expect(exit.code, exit.stdout).toBe(0);
  expect(exit.result?.summary?.files_removed).toBe(FILES);
  expect(countFiles(ours)).toBe(0);
  const sweepMs = exit.lines.find((l) => l.msg === 'root cleaned')?.ms as number;
  const sweepS = sweepMs / 1000;

  report(`file.cleanup-temp-files: ${FILES} files older than 24 h in ${DIRS} directories`, [
    ['find -type f -mmin +1440 -delete: s', findS.toFixed(2)],
    ['find: files/s', Math.round(FILES / findS)],
    ['task sweep: s', sweepS.toFixed(2)],
    ['task sweep: files/s', Math.round(FILES / sweepS)],
    ['task process wall (start-up included): s', wallS.toFixed(2)],
    ['files/s ratio task sweep / find', (findS / sweepS).toFixed(2)],
    ['files/s ratio task process / find', (findS / wallS).toFixed(2)],
  ]);
  expect(readdirSync(ours).length).toBe(DIRS); // directories stay without removeEmptyDirs
});
