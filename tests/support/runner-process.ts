// Runs the bundled task-runner (dist/task-runner.mjs) as a real process, the way a pod runs it,
// and hands back its exit code, its JSON log lines and the result on the last line.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { watch } from 'node:fs';
import { resolve } from 'node:path';
import type { LastRun } from '../../crds/schema.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const RUNNER = resolve(ROOT, 'dist/task-runner.mjs');

let built = false;
/** Bundles the runner once per test process, so tests always run the current sources. */
export function buildRunner(): void {
  if (built) return;
  execFileSync(process.execPath, [resolve(ROOT, 'hack/build.mjs'), 'task-runner'], { cwd: ROOT, stdio: 'pipe' });
  built = true;
}

export interface RunnerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout lines that parse as JSON objects (the pino log). */
  lines: Record<string, unknown>[];
  /** The result of `run`: the last log line's `result`. */
  result: LastRun | undefined;
}

export interface RunningRunner {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  /** Resolves with the first log line matching `match` (already seen or still to come). */
  waitForLine(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exit: Promise<RunnerExit>;
}

/**
 * The runner's environment: PATH and the compile cache from ours, nothing else inherited (a
 * stray KUBERNETES_SERVICE_HOST or DATABASE_URL must not leak into a test), plus `env`.
 */
function runnerEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) base[k] = v;
  return base;
}

export function startRunner(args: string[], env: Record<string, string | undefined> = {}): RunningRunner {
  const child = spawn(process.execPath, [RUNNER, ...args], { cwd: ROOT, env: runnerEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    pending += chunk;
    const complete = pending.split('\n');
    pending = complete.pop() ?? '';
    for (const text of complete) {
      const line = parseLine(text);
      if (!line) continue;
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = new Promise<RunnerExit>((resolveExit, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const last = lines.at(-1);
      resolveExit({ code, signal, stdout, stderr, lines, result: last?.result as LastRun | undefined });
    });
  });
  return {
    child,
    lines,
    exit,
    waitForLine(match, timeoutMs = 30_000) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolveLine, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; lines so far:\n${stdout}\n${stderr}`)), timeoutMs);
        waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolveLine(l)) });
        void exit.then(() => reject(new Error(`the runner exited without a matching log line:\n${stdout}\n${stderr}`)));
      });
    },
  };
}

export function runRunner(args: string[], env: Record<string, string | undefined> = {}): Promise<RunnerExit> {
  return startRunner(args, env).exit;
}

function parseLine(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined; // a line that merely starts with a brace is not a log line
  }
}

/**
 * Sends the runner SIGTERM as soon as a file in `dir` is removed (the sweep under way), and
 * resolves to its exit: a run stopped part-way through a real sweep.
 */
export function stopAtFirstRemoval(runner: RunningRunner, dir: string): Promise<RunnerExit> {
  const watcher = watch(dir, (event) => {
    if (event !== 'rename') return;
    watcher.close();
    runner.child.kill('SIGTERM');
  });
  return runner.exit.finally(() => watcher.close());
}
