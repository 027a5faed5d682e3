// The runner's own cost per run: `node dist/task-runner.mjs run` of a task whose run() returns at
// once (tests/fixtures/plugins/instant.mjs) — configuration, registry, plugin, the status report
// to the kind apiserver as a least-privilege ServiceAccount, exit — beside a bare `node -e 0`.
// The two alternate within each round, and each round swaps which goes first, so drift in the
// machine's load falls on both alike. Budget: the ratio of medians at most 5 (printed, not asserted).
//
// A start-up change is measured the same way: BENCH_RUNNER_BASELINE=<another build's
// task-runner.mjs> (e.g. dist/ of the previous commit, copied aside) joins the alternation, and
// the report gives both builds' medians side by side.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_GROUP } from '../../crds/constants.ts';
import { median, report } from '../support/bench-report.ts';
import { createNamespace, deleteNamespace, installCrd } from '../support/kube.ts';
import { createBackgroundTask, createServiceAccount, getBackgroundTask, hostApiAccess, type HostApiAccess } from '../support/runner-cluster.ts';
import { buildRunner, ROOT, RUNNER } from '../support/runner-process.ts';

const ROUNDS = Number(process.env.BENCH_STARTUP_ROUNDS ?? 25);
const BASELINE = process.env.BENCH_RUNNER_BASELINE ? resolve(process.env.BENCH_RUNNER_BASELINE) : undefined;
const WARM_UP = 3;
const TASK = 'startup';
const SA = 'bench-runner';

let ns: string;
let api: HostApiAccess | undefined;

beforeAll(async () => {
  buildRunner();
  await installCrd();
  ns = await createNamespace('bench-startup');
  await createBackgroundTask(ns, TASK, { task: 'sync.fixture-instant', schedule: '0 4 * * *', suspend: true });
  // What the runner needs: read and patch its own task's status, nothing else.
  await createServiceAccount(ns, SA, [{ apiGroups: [API_GROUP], resources: ['backgroundtasks/status'], resourceNames: [TASK], verbs: ['get', 'patch'] }]);
  api = await hostApiAccess(ns, SA);
});

afterAll(async () => {
  api?.remove();
  if (ns) await deleteNamespace(ns);
});

interface Timed {
  ms: number;
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Wall time from spawn to exit; spawnSync keeps this process's event loop out of the figure. */
function timed(args: string[], env: NodeJS.ProcessEnv): Timed {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 16 << 20 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  return { ms, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

describe('task-runner start-up', () => {
  it(`runs an instant task and reports it to the apiserver, against node -e 0 (${ROUNDS} rounds)`, async () => {
    // Both get the same environment: a pod's, with nothing inherited but PATH and HOME. The
    // machine-wide extra CA bundle (NODE_EXTRA_CA_CERTS) would be parsed at every TLS start; a pod has none.
    const env = (runId: string): NodeJS.ProcessEnv => ({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TASK_PLUGINS: resolve(ROOT, 'tests/fixtures/plugins/instant.mjs'),
      BGTASK_NAME: TASK,
      BGTASK_NAMESPACE: ns,
      BGTASK_RUN_ID: runId,
      BGTASK_TRIGGER: 'Schedule',
      BGTASK_ATTEMPT: '1',
      ...api!.env,
    });
    const commands: { label: string; args: string[]; reports: boolean; times: number[] }[] = [
      { label: 'node -e 0', args: ['-e', '0'], reports: false, times: [] },
      { label: 'task-runner run', args: [RUNNER, 'run', 'sync.fixture-instant'], reports: true, times: [] },
    ];
    if (BASELINE) commands.push({ label: 'baseline task-runner run', args: [BASELINE, 'run', 'sync.fixture-instant'], reports: true, times: [] });
    const check = (t: Timed, runId: string) => {
      expect(t.status, t.stdout + t.stderr).toBe(0);
      // A failed report is logged, not fatal: without this check a broken report would look fast.
      expect(t.stdout).not.toContain('status report failed');
      expect(t.stdout).toContain(`"runId":"${runId}"`);
    };
    // Fills V8's compile cache (the image ships a warm one) and proves each command works.
    for (let i = 0; i < WARM_UP; i++) {
      for (const c of commands) {
        const t = timed(c.args, env(`warm-${i}`));
        if (c.reports) check(t, `warm-${i}`);
      }
    }
    let lastRunId = '';
    for (let round = 0; round < ROUNDS; round++) {
      // Each round starts with the next command: every command goes first equally often.
      const order = commands.map((_, i) => commands[(i + round) % commands.length]!);
      for (const c of order) {
        const runId = `bench-${round}-${commands.indexOf(c)}`;
        const t = timed(c.args, env(runId));
        if (c.reports) {
          check(t, runId);
          lastRunId = runId;
        }
        c.times.push(t.ms);
      }
    }
    // Every run patched the real object: the last one's result is there, written by the runner.
    const task = await getBackgroundTask(ns, TASK);
    expect(task.status?.lastRun).toMatchObject({ runId: lastRunId, outcome: 'Succeeded' });
    expect(task.metadata.managedFields).toContainEqual(expect.objectContaining({ manager: 'bgtask-runner', subresource: 'status' }));

    const [bare, runner, baseline] = commands;
    const spread = (xs: number[]) => `${ms(median(xs))} / ${ms(Math.min(...xs))} / ${ms(Math.max(...xs))}`;
    const rows: Array<[string, string | number]> = [
      ['rounds (alternating, order rotated each round)', ROUNDS],
      [`${bare!.label}: median / min / max`, spread(bare!.times)],
      [`${runner!.label}: median / min / max`, spread(runner!.times)],
      ['runner cost over node (median)', ms(median(runner!.times) - median(bare!.times))],
      ['ratio of medians (budget ≤ 5)', `${(median(runner!.times) / median(bare!.times)).toFixed(2)}x`],
    ];
    if (baseline) {
      rows.push(
        [`${baseline.label} (${BASELINE}): median / min / max`, spread(baseline.times)],
        ['baseline ratio of medians', `${(median(baseline.times) / median(bare!.times)).toFixed(2)}x`],
        ['this build minus baseline (median of per-round differences)', ms(median(runner!.times.map((t, i) => t - baseline.times[i]!)))],
      );
    }
    report('task-runner start-up: run of an instant task with its status report, vs node -e 0', rows);
  });
});
