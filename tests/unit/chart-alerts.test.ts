// The chart's alert rules evaluated by Prometheus' own rule engine: `promtool test rules` (built
// from the pinned Prometheus Go module, like helm) over input series shaped like the operator's
// scrape, from both replicas, with the exact alerts, labels and rendered annotations expected at
// each time. A rendered-but-wrong expression (a join that never matches, a precedence slip, an
// absent series that never crosses a threshold) fails here, where a YAML check would pass.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHelm, ensurePromtool, one, render } from './chart-support.ts';

const JOB = 'rel-bgtask-operator-metrics';
const dir = mkdtempSync(join(tmpdir(), 'bgtask-alerts-'));
const rulesFile = join(dir, 'rules.yaml');
let promtool: string;

beforeAll(() => {
  ensureHelm();
  promtool = ensurePromtool();
  const rule = one(render({ set: { 'prometheusRule.enabled': true } }), 'PrometheusRule');
  writeFileSync(rulesFile, JSON.stringify({ groups: rule.spec.groups }));
}, 1_800_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Labels = Record<string, string>;
interface Series {
  series: string;
  /** promtool's expanding notation: '0 1 2', '10000+60x20', '_' for no sample. */
  values: string;
}
interface AlertCheck {
  eval_time: string;
  alertname: string;
  exp_alerts: { exp_labels: Labels; exp_annotations: Labels }[];
}

/** One series as the operator's pods export it (two replicas: the rules take the max). */
function series(metric: string, labels: Labels, values: string, pod = 'operator-a'): Series {
  const all = { job: JOB, pod, ...labels };
  return { series: `${metric}{${Object.entries(all).map(([k, v]) => `${k}="${v}"`).join(',')}}`, values };
}
const both = (metric: string, labels: Labels, values: string): Series[] => [series(metric, labels, values, 'operator-a'), series(metric, labels, values, 'operator-b')];

/** Runs promtool on one test group; resolves its exit code and output. */
function promtoolTest(input: Series[], checks: AlertCheck[]): { code: number; output: string } {
  const file = join(dir, `test-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, JSON.stringify({ rule_files: [rulesFile], evaluation_interval: '1m', tests: [{ interval: '1m', input_series: input, alert_rule_test: checks }] }));
  const r = spawnSync(promtool, ['test', 'rules', file], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? 1, output: `${r.stdout}${r.stderr}` };
}
function expectPasses(input: Series[], checks: AlertCheck[]): void {
  const r = promtoolTest(input, checks);
  expect(r.code, r.output).toBe(0);
}

const digest = { namespace: 'ns', name: 'digest', task: 'email.digest' };
const hourly = (labels: Labels) => both('bgtask_schedule_interval_seconds', { ...labels, family: labels.task!.split('.')[0]! }, '3600x30');

describe('the chart\'s alert rules, evaluated by promtool', () => {
  it('BackgroundTaskFailingRepeatedly: once the third run in a row failed, one alert for both replicas', () => {
    const labels = { ...digest, family: 'email' };
    const annotations = {
      summary: 'ns/digest (email.digest) failed 3 runs in a row',
      description: 'kubectl -n ns describe bgt digest shows the last outcome and message, and an Event for each failure.',
    };
    expectPasses(both('bgtask_consecutive_failures', labels, '0 1 2 3 0'), [
      { eval_time: '2m', alertname: 'BackgroundTaskFailingRepeatedly', exp_alerts: [] },
      { eval_time: '3m', alertname: 'BackgroundTaskFailingRepeatedly', exp_alerts: [{ exp_labels: { severity: 'warning', ...labels }, exp_annotations: annotations }] },
      { eval_time: '4m', alertname: 'BackgroundTaskFailingRepeatedly', exp_alerts: [] }, // a success reset it
    ]);
  });

  it('BackgroundTaskNoRecentSuccess: past three schedule intervals since the last success, not before; a suspended task (no interval) never', () => {
    const suspended = { namespace: 'ns', name: 'paused', task: 'file.backup-user-data' };
    const input = [
      // 10,000 s since the last success, one more minute each minute: over 3 × 3,600 s after 14 minutes.
      ...both('bgtask_seconds_since_last_success', digest, '10000+60x20'),
      ...hourly(digest),
      ...both('bgtask_seconds_since_last_success', suspended, '99999+60x20'),
    ];
    expectPasses(input, [
      { eval_time: '13m', alertname: 'BackgroundTaskNoRecentSuccess', exp_alerts: [] },
      {
        eval_time: '14m',
        alertname: 'BackgroundTaskNoRecentSuccess',
        exp_alerts: [{ exp_labels: { severity: 'warning', ...digest }, exp_annotations: { summary: 'ns/digest (email.digest) has not succeeded for 3h 0m 40s, over 3 times its schedule interval' } }],
      },
    ]);
  });

  it('BackgroundTaskNeverSucceeded: a task with no success at all, counted from its creation; not one that succeeded once, nor a suspended one', () => {
    const succeeded = { namespace: 'ns', name: 'backup', task: 'file.backup-user-data' };
    const suspended = { namespace: 'ns', name: 'paused', task: 'sync.calendar-events' };
    const input = [
      ...both('bgtask_task_age_seconds', digest, '10000+60x20'),
      ...hourly(digest),
      ...both('bgtask_task_age_seconds', succeeded, '99999+60x20'),
      ...both('bgtask_seconds_since_last_success', succeeded, '60+60x20'),
      ...hourly(succeeded),
      ...both('bgtask_task_age_seconds', suspended, '99999+60x20'),
    ];
    const fired = {
      exp_labels: { severity: 'warning', ...digest },
      exp_annotations: {
        summary: 'ns/digest (email.digest) has never succeeded in the 3h 0m 40s since it was created, over 3 times its schedule interval',
        description: 'kubectl -n ns describe bgt digest shows whether it ran at all (Queued, InvalidSpec, a failing run) and its Events.',
      },
    };
    expectPasses(input, [
      { eval_time: '13m', alertname: 'BackgroundTaskNeverSucceeded', exp_alerts: [] },
      { eval_time: '14m', alertname: 'BackgroundTaskNeverSucceeded', exp_alerts: [fired] },
      // The task that succeeded is no concern of either dead-man's switch: its last success is recent.
      { eval_time: '14m', alertname: 'BackgroundTaskNoRecentSuccess', exp_alerts: [] },
    ]);
    // Its first success ends the alert.
    expectPasses([...both('bgtask_task_age_seconds', digest, '10000+60x20'), ...hourly(digest), ...both('bgtask_seconds_since_last_success', digest, '_x15 0+60x5')], [
      { eval_time: '14m', alertname: 'BackgroundTaskNeverSucceeded', exp_alerts: [fired] },
      { eval_time: '16m', alertname: 'BackgroundTaskNeverSucceeded', exp_alerts: [] },
    ]);
  });

  it('BackgroundTaskRunsQueued: a run that waited past the threshold for a slot of its family', () => {
    expectPasses(both('bgtask_oldest_queued_run_seconds', { family: 'ai' }, '0 1700 1801'), [
      { eval_time: '1m', alertname: 'BackgroundTaskRunsQueued', exp_alerts: [] },
      {
        eval_time: '2m',
        alertname: 'BackgroundTaskRunsQueued',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning', family: 'ai' },
            exp_annotations: {
              summary: 'A run of family ai has waited 30m 1s for a slot (over 1800 s)',
              description: 'The family\'s concurrency (families.ai.concurrency) is taken by long runs, or is 0. kubectl get bgt -A -o wide shows which tasks have a run Queued.',
            },
          },
        ],
      },
    ]);
  });

  it('BackgroundTaskOperatorNoLeader: after 5 minutes with no replica leading, also when no replica is scraped at all', () => {
    const summary = { summary: 'No bgtask operator replica has held the lease for 5 minutes: nothing is scheduled or admitted' };
    expectPasses([series('bgtask_leader', {}, '1 0x10', 'operator-a'), series('bgtask_leader', {}, '0x11', 'operator-b')], [
      { eval_time: '5m', alertname: 'BackgroundTaskOperatorNoLeader', exp_alerts: [] },
      { eval_time: '7m', alertname: 'BackgroundTaskOperatorNoLeader', exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: summary }] },
    ]);
    expectPasses([series('bgtask_leader', {}, '0 1x10', 'operator-a'), series('bgtask_leader', {}, '0x11', 'operator-b')], [
      { eval_time: '8m', alertname: 'BackgroundTaskOperatorNoLeader', exp_alerts: [] },
    ]);
    // Nothing scraped: `or vector(0)` makes the absence count. (An unrelated series keeps the test's storage non-empty.)
    expectPasses([{ series: 'up{job="other"}', values: '1x10' }], [
      { eval_time: '6m', alertname: 'BackgroundTaskOperatorNoLeader', exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: summary }] },
    ]);
  });

  it('BackgroundTaskCRDOutdated: after 5 minutes of an outdated CRD, until the new one is applied; not when it cannot be read', () => {
    const fired = {
      exp_labels: { severity: 'warning' },
      exp_annotations: {
        summary: 'The served BackgroundTask CRD is not the one the operator was built with: status fields it lacks are dropped, spec fields refused',
        description: "Run `helm upgrade` again (its hook applies the CRD of the release's operator image), or apply it directly: kubectl apply --server-side --force-conflicts -f charts/bgtask-operator/crds/ (the operator log line 'the served CRD is not the one' names both schema hashes).",
      },
    };
    // The gauge keeps one series, the state that holds: applying the CRD swaps outdated for current.
    expectPasses([...both('bgtask_crd_schema_state', { state: 'outdated' }, '1x7 stale'), ...both('bgtask_crd_schema_state', { state: 'current' }, '_x7 1x5')], [
      { eval_time: '4m', alertname: 'BackgroundTaskCRDOutdated', exp_alerts: [] },
      { eval_time: '6m', alertname: 'BackgroundTaskCRDOutdated', exp_alerts: [fired] },
      { eval_time: '9m', alertname: 'BackgroundTaskCRDOutdated', exp_alerts: [] },
    ]);
    expectPasses(both('bgtask_crd_schema_state', { state: 'unknown' }, '1x12'), [{ eval_time: '10m', alertname: 'BackgroundTaskCRDOutdated', exp_alerts: [] }]);
  });

  it('is a test that can fail: promtool reports an expectation the rules do not meet', () => {
    const r = promtoolTest(both('bgtask_consecutive_failures', { ...digest, family: 'email' }, '0 1 2'), [
      { eval_time: '2m', alertname: 'BackgroundTaskFailingRepeatedly', exp_alerts: [{ exp_labels: { severity: 'warning', ...digest, family: 'email' }, exp_annotations: {} }] },
    ]);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/FAILED/);
  });
});
