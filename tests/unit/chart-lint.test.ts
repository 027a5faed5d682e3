// `helm lint` is clean (no warning, no error) with the defaults and with every optional feature on,
// and values.schema.json refuses values the chart could not render sensibly.
import { beforeAll, describe, expect, it } from 'vitest';
import { kubernetesVersion } from '../support/platform.ts';
import { ALL_FEATURES, CHART, DEMO, ensureHelm, helm, templateArgs } from './chart-support.ts';

beforeAll(() => void ensureHelm(), 900_000);

describe('helm lint', () => {
  it.each([
    ['defaults', []],
    ['every optional feature', ['-f', ALL_FEATURES]],
    ['the demo values of make up', ['-f', DEMO]],
    ['watching one namespace', ['--set', 'operator.watchNamespace=team-a']],
  ])('is clean with %s', (_name, extra) => {
    const r = helm(['lint', '--strict', CHART, '--kube-version', kubernetesVersion(), ...extra]);
    expect(r.stdout + r.stderr).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(r.code).toBe(0);
  });
});

describe('Chart.yaml kubeVersion', () => {
  it('refuses Kubernetes 1.29, whose apiserver would refuse the CRD (optionalOldSelf is off by default there)', () => {
    const r = helm([...templateArgs({}), '--kube-version', '1.29.9']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('chart requires kubeVersion: >=1.30.0-0 which is incompatible with Kubernetes v1.29.9');
    expect(helm([...templateArgs({}), '--kube-version', '1.30.0']).code).toBe(0);
  });
});

describe('values.schema.json', () => {
  it.each([
    ['replicas as a word', { 'operator.replicas': 'two' }, /operator\/replicas.*got string, want integer/],
    ['an unknown pull policy', { 'runner.image.pullPolicy': 'Sometimes' }, /runner\/image\/pullPolicy/],
    ['a misspelt key', { 'operator.replica': 2 }, /additional properties 'replica' not allowed/],
    ['a negative family concurrency', { 'families.ai.concurrency': -1 }, /families\/ai\/concurrency/],
    ['a malformed memory limit', { 'families.email.resources.limits.memory': '1 GB' }, /families\/email\/resources\/limits\/memory/],
    ['a negative CPU request', { 'families.file.resources.requests.cpu': '-500m' }, /families\/file\/resources\/requests\/cpu/],
    ['a negative CPU limit as a number', { 'families.ai.resources.limits.cpu': -1 }, /families\/ai\/resources\/limits\/cpu/],
    ['a family the operator does not know', { 'families.video.concurrency': 1 }, /additional properties 'video' not allowed/],
    ['a default task outside the families', { 'defaultTasks.tasks.x.task': 'video.encode', 'defaultTasks.tasks.x.schedule': '* * * * *', 'defaultTasks.tasks.x.enabled': true }, /defaultTasks\/tasks\/x\/task/],
    ['a watch namespace that is no namespace name', { 'operator.watchNamespace': 'Team_A' }, /operator\/watchNamespace/],
    ['a runner volume named like the runs\' scratch volume', { 'runner.volumes[0].name': 'tmp', 'runner.volumes[0].emptyDir.medium': 'Memory' }, /runner\/volumes\/0\/name/],
    ['a runner volume mount at a relative path', { 'runner.volumeMounts[0].name': 'p', 'runner.volumeMounts[0].mountPath': 'plugins' }, /runner\/volumeMounts\/0\/mountPath/],
    ['a runner envFrom naming a Secret and a ConfigMap at once', { 'runner.envFrom[0].secretRef.name': 'a', 'runner.envFrom[0].configMapRef.name': 'b' }, /runner\/envFrom\/0/],
    ['a queued-run threshold of 0', { 'prometheusRule.queuedRuns.thresholdSeconds': 0 }, /prometheusRule\/queuedRuns\/thresholdSeconds/],
  ])('rejects %s', (_name, set, message) => {
    const r = helm(templateArgs({ set }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });

  it('refuses a runs\' variable given twice (the operator would refuse RUNNER_ENV at start), naming both places and the fix', () => {
    const set = { 'credentials.llm.existingSecret': 'llm', 'runner.env.LLM_BASE_URL': 'http://ollama:11434/v1' };
    const r = helm(templateArgs({ set }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/the runs' variable LLM_BASE_URL is given by runner.env and by credentials.llm.env: keep one \(a credential's entry is removed with credentials.llm.env.LLM_BASE_URL=null\)/);
    // Two credentials naming one variable.
    const twice = helm(templateArgs({ set: { 'credentials.smtp.existingSecret': 'smtp', 'credentials.notion.existingSecret': 'notion', 'credentials.notion.env.SMTP_URL': 'x' } }));
    expect(twice.code).not.toBe(0);
    expect(twice.stderr).toMatch(/the runs' variable SMTP_URL is given by credentials.notion.env and by credentials.smtp.env/);
    // The bundled database's variable is not a credentials entry: the fix is to drop the other one.
    const bundled = helm(templateArgs({ set: { 'postgresql.enabled': true, 'runner.env.DATABASE_URL': 'postgres://elsewhere/db' } }));
    expect(bundled.code).not.toBe(0);
    expect(bundled.stderr).toMatch(/the runs' variable DATABASE_URL is given by runner.env and by the bundled Postgres \(postgresql.enabled\): keep one \(remove runner.env.DATABASE_URL\)/);
    // The fix the message names renders.
    expect(helm([...templateArgs({ set }), '--set', 'credentials.llm.env.LLM_BASE_URL=null']).code).toBe(0);
  });

  it('refuses several replicas without leader election, naming the fix', () => {
    const r = helm(templateArgs({ set: { 'operator.leaderElection.enabled': false } }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/operator.replicas > 1 needs operator.leaderElection.enabled/);
    expect(helm(templateArgs({ set: { 'operator.leaderElection.enabled': false, 'operator.replicas': 1 } })).code).toBe(0);
  });
});
