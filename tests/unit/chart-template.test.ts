// What `helm template` renders: the objects of each configuration, and the settings that the
// operator, the runner and the apiserver depend on (env names, hooks, RBAC scope, security).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backgroundTaskSchema } from '../../crds/schema.ts';
import { resolveSettings } from '../../operator/cli.ts';
import { parseFamiliesConfig } from '../../operator/config/families.ts';
import { createMetrics } from '../../operator/metrics.ts';
import { builtinTasks } from '../../task-runner/tasks/index.ts';
import { ALL_FEATURES, DEMO, ensureHelm, find, one, podSpecs, render, type Manifest } from './chart-support.ts';

beforeAll(() => void ensureHelm(), 900_000);

const kinds = (ms: Manifest[]) => ms.map((m) => m.kind).sort();
const env = (container: any): Record<string, any> => Object.fromEntries((container.env ?? []).map((e: any) => [e.name, e.value ?? e.valueFrom]));
const operatorContainer = (ms: Manifest[]) => one(ms, 'Deployment', 'rel-bgtask-operator').spec.template.spec.containers[0];
/** The operator's settings as it resolves them from the Deployment's plain env (what it would start with). */
const operatorSettings = (ms: Manifest[]) => {
  const plain = Object.fromEntries((operatorContainer(ms).env as { name: string; value?: string }[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
  return resolveSettings({}, plain);
};
type Rule = { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> };
const rules = (ms: Manifest[]) => one(ms, 'PrometheusRule').spec.groups.flatMap((g: { rules: Rule[] }) => g.rules) as Rule[];
const rule = (ms: Manifest[], alert: string) => {
  const found = rules(ms).filter((r) => r.alert === alert);
  if (found.length !== 1) throw new Error(`expected one alert ${alert}, found ${found.length}`);
  return found[0]!;
};
/** PromQL without its layout: one space between tokens. */
const flat = (expr: string) => expr.replace(/\s+/g, ' ').trim();

/** The seed's eleven scheduled tasks and their schedules (the daily summary hourly: at each user's 08:00). */
const SEED_SCHEDULES: Record<string, string> = {
  'ai.process-due-tasks': '*/10 * * * *',
  'ai.test-scheduler-connection': '*/30 * * * *',
  'ai.cleanup-old-logs': '0 2 * * *',
  'email.process-queue': '*/5 * * * *',
  'email.send-daily-summary': '0 * * * *',
  'file.cleanup-temp-files': '0 2 * * *',
  'file.backup-user-data': '0 1 * * 0',
  'sync.calendar-events': '0 * * * *',
  'sync.notion-pages': '0 */2 * * *',
  'maintenance.optimize-database': '0 3 * * 0',
  'maintenance.cleanup-old-sessions': '0 4 * * *',
};

/** The default tasks: the seed's, and the delivery of the notifications ai.process-due-tasks and sync.calendar-events queue. */
const DEFAULT_SCHEDULES: Record<string, string> = { ...SEED_SCHEDULES, 'email.send-notifications': '*/5 * * * *' };

describe('helm template with the defaults', () => {
  let ms: Manifest[];
  beforeAll(() => {
    ms = render();
  });

  it('renders the operator, its RBAC, config, metrics Service, PDB, the helm test, the uninstall and CRD upgrade hooks, the runs\' report policy, nothing optional', () => {
    const uninstall = ['Job', 'Role', 'RoleBinding', 'ServiceAccount'];
    const crdUpgrade = ['Job', 'ClusterRole', 'ClusterRoleBinding', 'ServiceAccount'];
    const reportPolicy = ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'];
    expect(kinds(ms)).toEqual(
      ['ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'Pod', 'PodDisruptionBudget', 'Role', 'Role', 'RoleBinding', 'RoleBinding', 'Service', 'ServiceAccount', 'ServiceAccount', ...uninstall, ...crdUpgrade, ...reportPolicy].sort(),
    );
  });

  it('brings the CRD up to date before every upgrade and rollback, with the operator image, allowed to get and patch that CRD only', () => {
    const job = one(ms, 'Job', 'rel-bgtask-operator-crd-upgrade');
    expect(job.metadata.annotations?.['helm.sh/hook']).toBe('pre-upgrade,pre-rollback');
    expect(job.metadata.annotations?.['helm.sh/hook-delete-policy']).toBe('before-hook-creation,hook-succeeded');
    const pod = job.spec.template.spec;
    expect(pod.serviceAccountName).toBe('rel-bgtask-operator-crd-upgrade');
    // The image's ENTRYPOINT is node and the bundle; its CMD (run) is replaced.
    expect(pod.containers[0].command).toBeUndefined();
    expect(pod.containers[0].args).toEqual(['crd', 'apply']);
    expect(pod.containers[0].image).toBe(operatorContainer(ms).image);
    const role = one(ms, 'ClusterRole', 'bgtask-rel-bgtask-operator-crd-upgrade');
    expect(role.rules).toEqual([
      { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], resourceNames: ['backgroundtasks.workers.personal-assistant.io'], verbs: ['get', 'patch'] },
    ]);
    const binding = one(ms, 'ClusterRoleBinding', 'bgtask-rel-bgtask-operator-crd-upgrade');
    expect(binding.roleRef.name).toBe(role.metadata.name);
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'rel-bgtask-operator-crd-upgrade', namespace: 'bgtask' }]);
    // Its RBAC exists before the Job (lower weight) and goes with it.
    for (const m of [role, binding, one(ms, 'ServiceAccount', 'rel-bgtask-operator-crd-upgrade')]) {
      expect(m.metadata.annotations?.['helm.sh/hook'], m.kind).toBe('pre-upgrade,pre-rollback');
      expect(Number(m.metadata.annotations?.['helm.sh/hook-weight']), m.kind).toBeLessThan(Number(job.metadata.annotations?.['helm.sh/hook-weight']));
    }
  });

  it('stops the operator and releases the default tasks\' runs in a pre-delete hook, with RBAC for that alone', () => {
    const job = one(ms, 'Job', 'rel-bgtask-operator-uninstall');
    expect(job.metadata.annotations?.['helm.sh/hook']).toBe('pre-delete');
    expect(job.spec.template.spec.containers[0].command.slice(0, 3)).toEqual(['node', '--input-type=module', '--eval']);
    const role = one(ms, 'Role', 'rel-bgtask-operator-uninstall');
    expect(role.metadata.annotations?.['helm.sh/hook']).toBe('pre-delete');
    expect(role.rules.find((r: any) => r.resources.includes('deployments/scale')).resourceNames).toEqual(['rel-bgtask-operator']);
    expect(role.rules.find((r: any) => r.resources.includes('leases'))).toEqual({ apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['rel-bgtask-operator'], verbs: ['delete'] });
  });

  it('runs two replicas with leader election and the settings the operator reads from its environment', () => {
    const d = one(ms, 'Deployment');
    expect(d.spec.replicas).toBe(2);
    const e = env(operatorContainer(ms));
    expect(e).toMatchObject({
      LEADER_ELECT: 'true',
      LEASE_NAME: 'rel-bgtask-operator',
      RUNNER_IMAGE: 'bgtask.local/task-runner:dev',
      RUNNER_SERVICE_ACCOUNT: 'rel-bgtask-operator-runner',
      FAMILIES_CONFIGMAP: 'rel-bgtask-operator-families',
      METRICS_ADDR: ':8080',
      HEALTH_ADDR: ':8081',
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
    expect(e).not.toHaveProperty('WATCH_NAMESPACE');
    expect(one(ms, 'ConfigMap').metadata.name).toBe(e.FAMILIES_CONFIGMAP);
  });

  it('gives the operator the runs\' pull policy, and no runner env when there are no credentials or settings', () => {
    const e = env(operatorContainer(ms));
    expect(e.RUNNER_IMAGE_PULL_POLICY).toBe('IfNotPresent');
    for (const name of ['RUNNER_ENV', 'RUNNER_ENV_FROM', 'RUNNER_VOLUMES', 'RUNNER_VOLUME_MOUNTS']) expect(e, name).not.toHaveProperty(name);
    expect(operatorSettings(ms)).toMatchObject({ runnerImage: 'bgtask.local/task-runner:dev', runnerImagePullPolicy: 'IfNotPresent', leaderElect: true });
  });

  it('lets a drain evict replicas that are not ready (they protect nothing)', () => {
    expect(one(ms, 'PodDisruptionBudget').spec).toMatchObject({ maxUnavailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow' });
  });

  it('probes /healthz and /readyz and runs restricted', () => {
    const spec = one(ms, 'Deployment').spec.template.spec;
    const c = spec.containers[0];
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(spec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
  });

  it('renders a families ConfigMap the operator parses to the seed defaults', () => {
    const parsed = parseFamiliesConfig(one(ms, 'ConfigMap').data['families.yaml']);
    expect(parsed.ai.concurrency).toBe(1);
    expect(parsed.email).toMatchObject({ concurrency: 4, resources: { limits: { cpu: '1', memory: '1Gi' } } });
  });

  it('gives the operator cluster-wide access to what it reconciles and only its Lease and ConfigMap at home', () => {
    const rules = one(ms, 'ClusterRole', 'bgtask-rel-bgtask-operator').rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const verbs = (group: string, resource: string) => rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) => r.verbs).sort();
    expect(verbs('workers.personal-assistant.io', 'backgroundtasks')).toEqual(['get', 'list', 'patch', 'watch']);
    expect(verbs('workers.personal-assistant.io', 'backgroundtasks/status')).toEqual(['get', 'patch']);
    expect(verbs('batch', 'cronjobs')).toEqual(['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']);
    expect(verbs('batch', 'jobs')).toEqual(['create', 'delete', 'get', 'list', 'patch', 'watch']);
    expect(verbs('', 'pods')).toEqual(['get', 'list', 'watch']);
    expect(verbs('events.k8s.io', 'events')).toEqual(['create', 'patch']);
    expect(verbs('', 'secrets')).toEqual([]);
    const self = one(ms, 'Role', 'rel-bgtask-operator-self').rules;
    expect(self).toContainEqual({ apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['rel-bgtask-operator'], verbs: ['get', 'update'] });
    expect(self).toContainEqual({ apiGroups: [''], resources: ['configmaps'], resourceNames: ['rel-bgtask-operator-families'], verbs: ['get', 'list', 'watch'] });
  });

  it('lets the operator read the BackgroundTask CRD, that one only, to compare it with its own every 5 minutes', () => {
    const role = one(ms, 'ClusterRole', 'bgtask-rel-bgtask-operator-crd');
    expect(role.rules).toEqual([
      { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], resourceNames: ['backgroundtasks.workers.personal-assistant.io'], verbs: ['get'] },
    ]);
    const binding = one(ms, 'ClusterRoleBinding', 'bgtask-rel-bgtask-operator-crd');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'rel-bgtask-operator', namespace: 'bgtask' }]);
    expect(operatorSettings(ms).crdCheckSeconds).toBe(300);
  });

  it('lets runs get and patch the status subresource, nothing more (the runner reads nothing else)', () => {
    const role = one(ms, 'Role', 'rel-bgtask-operator-runner');
    expect(role.rules).toEqual([{ apiGroups: ['workers.personal-assistant.io'], resources: ['backgroundtasks/status'], verbs: ['get', 'patch'] }]);
    const binding = one(ms, 'RoleBinding', 'rel-bgtask-operator-runner');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'rel-bgtask-operator-runner', namespace: 'bgtask' }]);
  });

  it("admits a run's status write only as its own report, from the runner's account in the runs' namespaces", () => {
    const policy = one(ms, 'ValidatingAdmissionPolicy', 'bgtask-rel-bgtask-operator-runner-reports');
    expect(policy.spec.failurePolicy).toBe('Fail');
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: ['workers.personal-assistant.io'], apiVersions: ['*'], operations: ['UPDATE'], resources: ['backgroundtasks/status'] },
    ]);
    expect(policy.spec.matchConditions).toEqual([
      { name: 'from-a-run', expression: "request.userInfo.username.startsWith('system:serviceaccount:') && request.userInfo.username.endsWith(':rel-bgtask-operator-runner')" },
    ]);
    // Every status member but lastRun must stay as the operator wrote it: the list follows the schema.
    const unchanged = policy.spec.validations.map((v: { expression: string }) => v.expression).find((e: string) => e.includes('oldObject.status.observedGeneration'));
    const kept = [...unchanged.matchAll(/has\(object\.status\.(\w+)\) \?/g)].map((m) => m[1]).sort();
    const statusMembers = Object.keys(backgroundTaskSchema.shape.status.unwrap().shape).filter((k) => k !== 'lastRun').sort();
    expect(kept).toEqual(statusMembers);
    const binding = one(ms, 'ValidatingAdmissionPolicyBinding', policy.metadata.name);
    expect(binding.spec).toEqual({
      policyName: policy.metadata.name,
      validationActions: ['Deny'],
      matchResources: { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['bgtask'] }] } },
    });
    expect(find(render({ set: { 'runner.reportPolicy.enabled': false } }), 'ValidatingAdmissionPolicy')).toEqual([]);
  });

  it('has a helm test hook that runs ai.test-scheduler-connection once', () => {
    const pod = one(ms, 'Pod');
    expect(pod.metadata.annotations?.['helm.sh/hook']).toBe('test');
    expect(pod.spec.restartPolicy).toBe('Never');
    expect(pod.spec.containers[0].args.slice(0, 2)).toEqual(['run', 'ai.test-scheduler-connection']);
  });
});

describe('helm template with every optional feature', () => {
  let ms: Manifest[];
  beforeAll(() => {
    ms = render({ files: [ALL_FEATURES] });
  });

  it('adds ServiceMonitor, PrometheusRule, NetworkPolicies, bundled Postgres and Redis, migrations and default tasks', () => {
    for (const kind of ['ServiceMonitor', 'PrometheusRule', 'Secret', 'PersistentVolumeClaim']) expect(find(ms, kind), kind).toHaveLength(1);
    expect(find(ms, 'Job', 'rel-bgtask-operator-migrate')).toHaveLength(1);
    expect(find(ms, 'NetworkPolicy').map((m) => m.metadata.name).sort()).toEqual(['rel-bgtask-operator', 'rel-bgtask-operator-postgresql', 'rel-bgtask-operator-redis']);
    expect(find(ms, 'Deployment').map((m) => m.metadata.name).sort()).toEqual(['rel-bgtask-operator', 'rel-bgtask-operator-postgresql', 'rel-bgtask-operator-redis']);
    expect(find(ms, 'BackgroundTask').length).toBeGreaterThan(0);
  });

  it('sets image and pull policy on every container, and runs every pod as non-root with a read-only root', () => {
    const specs = podSpecs(ms);
    expect(specs.length).toBe(7);
    for (const { owner, spec } of specs) {
      expect(spec.securityContext?.runAsNonRoot, owner).toBe(true);
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        expect(c.image, owner).toMatch(/^bgtask\.local\/[a-z-]+:[\w.-]+$/);
        expect(c.imagePullPolicy, owner).toBe('IfNotPresent');
        expect(c.securityContext?.readOnlyRootFilesystem, owner).toBe(true);
        expect(c.securityContext?.capabilities?.drop, owner).toEqual(['ALL']);
      }
    }
  });

  it('keeps the Postgres volume on uninstall, and the Secret with the password its data was made with', () => {
    expect(one(ms, 'PersistentVolumeClaim').metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    expect(one(ms, 'Secret', 'rel-bgtask-operator-bundled').metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    // Without persistence nothing outlives the release.
    const ephemeral = render({ files: [ALL_FEATURES], set: { 'postgresql.persistence.enabled': false } });
    expect(one(ephemeral, 'Secret', 'rel-bgtask-operator-bundled').metadata.annotations?.['helm.sh/resource-policy']).toBeUndefined();
  });

  it('migrates after install against the bundled Postgres, once it answers', () => {
    const job = one(ms, 'Job', 'rel-bgtask-operator-migrate');
    expect(job.metadata.annotations).toMatchObject({ 'helm.sh/hook': 'post-install,post-upgrade', 'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded' });
    expect(job.spec.template.spec.initContainers[0].command.join(' ')).toMatch(/pg_isready/);
    expect(job.spec.template.spec.containers[0].args).toEqual(['migrate']);
    expect(env(job.spec.template.spec.containers[0]).DATABASE_URL).toEqual({ secretKeyRef: { name: 'rel-bgtask-operator-bundled', key: 'database-url' } });
  });

  it('passes every credential to the operator for every run (optional Secret references), and to the helm test', () => {
    const expected = ['DATABASE_URL', 'LLM_API_KEY', 'LLM_BASE_URL', 'NOTION_TOKEN', 'REDIS_URL', 'SMTP_URL'];
    // The operator accepts what the chart passes, and gets every credential from its Secret.
    const runnerEnv = operatorSettings(ms).runnerEnv!;
    expect(runnerEnv.map((e) => e.name)).toEqual(expected);
    for (const e of runnerEnv) expect(e.valueFrom?.secretKeyRef, e.name).toEqual({ name: expect.any(String), key: expect.any(String), optional: true });
    expect(runnerEnv.find((e) => e.name === 'SMTP_URL')?.valueFrom?.secretKeyRef?.name).toBe('mail-credentials');
    expect(runnerEnv.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef).toEqual({ name: 'rel-bgtask-operator-bundled', key: 'database-url', optional: true });
    // The default tasks name no Secret: the operator adds the credentials to their runs.
    for (const t of find(ms, 'BackgroundTask')) expect(t.spec.env, t.metadata.name).toBeUndefined();
    const testVars = one(ms, 'Pod').spec.containers[0].env;
    expect(testVars.map((e: any) => e.name)).toEqual(expected);
    for (const e of testVars) expect(e.valueFrom.secretKeyRef.name).toBeTruthy();
    const secret = one(ms, 'Secret');
    expect(secret.stringData['database-url']).toMatch(/^postgresql:\/\/postgres:[A-Za-z0-9]{24}@rel-bgtask-operator-postgresql:5432\/bgtask$/);
    expect(secret.stringData['redis-url']).toMatch(/^redis:\/\/:[A-Za-z0-9]{24}@rel-bgtask-operator-redis:6379\/0$/);
  });

  it('lets Prometheus keep the tasks\' own namespace label', () => {
    expect(one(ms, 'ServiceMonitor').spec.endpoints[0]).toMatchObject({ port: 'metrics', honorLabels: true });
  });

  it('creates the runner ServiceAccount and Role in every namespace runs happen in', () => {
    expect(find(ms, 'ServiceAccount', 'rel-bgtask-operator-runner').map((m) => m.metadata.namespace).sort()).toEqual(['bgtask', 'team-a']);
    expect(find(ms, 'Role', 'rel-bgtask-operator-runner').map((m) => m.metadata.namespace).sort()).toEqual(['bgtask', 'team-a']);
    expect(one(ms, 'ValidatingAdmissionPolicyBinding').spec.matchResources.namespaceSelector.matchExpressions[0].values.sort()).toEqual(['bgtask', 'team-a']);
  });

  it('renders the families overrides so the operator accepts them', () => {
    const parsed = parseFamiliesConfig(one(ms, 'ConfigMap').data['families.yaml']);
    expect(parsed.ai).toMatchObject({ concurrency: 2, priorityClassName: 'low', nodeSelector: { workload: 'ai' } });
  });

  it('alerts on consecutive failures, on no success within a multiple of the schedule interval (or ever), on queued runs and on no leader', () => {
    expect(rules(ms).map((r) => r.alert).sort()).toEqual([
      'BackgroundTaskCRDOutdated',
      'BackgroundTaskFailingRepeatedly',
      'BackgroundTaskNeverSucceeded',
      'BackgroundTaskNoRecentSuccess',
      'BackgroundTaskOperatorNoLeader',
      'BackgroundTaskRunsQueued',
    ]);
    const job = 'job="rel-bgtask-operator-metrics"';
    expect(flat(rule(ms, 'BackgroundTaskFailingRepeatedly').expr)).toBe(`max by (namespace, name, task, family) (bgtask_consecutive_failures{${job}}) >= 3`);
    expect(flat(rule(ms, 'BackgroundTaskNoRecentSuccess').expr)).toBe(
      `max by (namespace, name, task) (bgtask_seconds_since_last_success{${job}}) > on (namespace, name, task) 3 * max by (namespace, name, task) (bgtask_schedule_interval_seconds{${job}})`,
    );
    expect(flat(rule(ms, 'BackgroundTaskNeverSucceeded').expr)).toBe(
      `( max by (namespace, name, task) (bgtask_task_age_seconds{${job}}) unless on (namespace, name, task) max by (namespace, name, task) (bgtask_seconds_since_last_success{${job}}) ) > on (namespace, name, task) 3 * max by (namespace, name, task) (bgtask_schedule_interval_seconds{${job}})`,
    );
    expect(flat(rule(ms, 'BackgroundTaskRunsQueued').expr)).toBe(`max by (family) (bgtask_oldest_queued_run_seconds{${job}}) > 1800`);
    expect(flat(rule(ms, 'BackgroundTaskCRDOutdated').expr)).toBe(`max(bgtask_crd_schema_state{${job}, state="outdated"}) == 1`);
    for (const r of rules(ms)) {
      expect(r.labels.severity, r.alert).toMatch(/^(warning|critical)$/);
      expect(r.annotations.summary, r.alert).toBeTruthy();
    }
    // Prometheus' own templates reach Prometheus unrendered.
    expect(rule(ms, 'BackgroundTaskFailingRepeatedly').annotations.summary).toBe('{{ $labels.namespace }}/{{ $labels.name }} ({{ $labels.task }}) failed {{ $value }} runs in a row');
    expect(rule(ms, 'BackgroundTaskRunsQueued').annotations.summary).toContain('{{ $labels.family }}');
  });

  it('alerts on every task, not only the default ones, and on metrics the operator exports', () => {
    const names = rules(ms).flatMap((r) => [...r.expr.matchAll(/\b(bgtask_[a-z_]+)\{/g)].map((m) => m[1]));
    expect(new Set(names)).toEqual(
      new Set([
        'bgtask_consecutive_failures',
        'bgtask_seconds_since_last_success',
        'bgtask_task_age_seconds',
        'bgtask_schedule_interval_seconds',
        'bgtask_oldest_queued_run_seconds',
        'bgtask_leader',
        'bgtask_crd_schema_state',
      ]),
    );
    for (const r of rules(ms)) expect(r.expr, r.alert).not.toMatch(/name="/);
    const exported = new Set(createMetrics({ defaultMetrics: false }).registry.getMetricsAsArray().map((m) => m.name));
    for (const name of names) expect(exported, name).toContain(name);
  });
});

describe('PrometheusRule thresholds from values', () => {
  it('takes the failure count, the interval multiple, the queue threshold and the severities', () => {
    // A values file: --set would pass 1.5 as a string.
    const dir = mkdtempSync(join(tmpdir(), 'bgtask-chart-'));
    const file = join(dir, 'values.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        prometheusRule: {
          enabled: true,
          failingRuns: { count: 5, severity: 'critical' },
          noSuccess: { intervalMultiple: 1.5, severity: 'info' },
          queuedRuns: { thresholdSeconds: 600, severity: 'critical' },
        },
      }),
    );
    let ms: Manifest[];
    try {
      ms = render({ files: [file] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const failing = rule(ms, 'BackgroundTaskFailingRepeatedly');
    expect(flat(failing.expr)).toMatch(/ >= 5$/);
    expect(failing.labels.severity).toBe('critical');
    const noSuccess = rule(ms, 'BackgroundTaskNoRecentSuccess');
    expect(flat(noSuccess.expr)).toMatch(/ > on \(namespace, name, task\) 1\.5 \* max by \(namespace, name, task\) \(bgtask_schedule_interval_seconds\{/);
    expect(noSuccess.labels.severity).toBe('info');
    const never = rule(ms, 'BackgroundTaskNeverSucceeded');
    expect(flat(never.expr)).toMatch(/ > on \(namespace, name, task\) 1\.5 \* max by \(namespace, name, task\) \(bgtask_schedule_interval_seconds\{/);
    expect(never.labels.severity).toBe('info');
    const queued = rule(ms, 'BackgroundTaskRunsQueued');
    expect(flat(queued.expr)).toMatch(/ > 600$/);
    expect(queued.labels.severity).toBe('critical');
    expect(queued.annotations.summary).toContain('over 600 s');
  });
});

describe('default tasks', () => {
  let tasks: Manifest[];
  beforeAll(() => {
    tasks = find(render({ set: { 'defaultTasks.enabled': true } }), 'BackgroundTask');
  });

  it('lists the seed\'s eleven tasks with the seed\'s schedules in values, and the notifications\' delivery', () => {
    const every = Object.fromEntries(Object.keys(DEFAULT_SCHEDULES).map((t) => [`defaultTasks.tasks.${t.replace('.', '-')}.enabled`, true]));
    const all = render({ set: { 'defaultTasks.enabled': true, ...every } });
    const rendered = Object.fromEntries(find(all, 'BackgroundTask').map((m) => [m.spec.task, m.spec.schedule]));
    expect(rendered).toEqual(DEFAULT_SCHEDULES);
  });

  it('enables only tasks the runner registers (any other would be InvalidSpec)', () => {
    const registered = new Set(builtinTasks.map((t) => t.name));
    expect(tasks.length).toBeGreaterThan(0);
    for (const t of tasks) expect(registered, t.spec.task).toContain(t.spec.task);
  });

  it('are valid BackgroundTasks', () => {
    for (const t of tasks) expect(backgroundTaskSchema.safeParse(t).error, t.metadata.name).toBeUndefined();
  });
});

describe('other configurations', () => {
  it('narrows the operator to one namespace with a Role instead of a ClusterRole (but for reading its CRD, unless told not to)', () => {
    // The operator's own, not the CRD upgrade hook's (cluster-wide whatever it watches).
    const operatorOwn = (manifests: Manifest[], kind: string) => find(manifests, kind).filter((m) => !m.metadata.annotations?.['helm.sh/hook']).map((r) => r.metadata.name);
    const ms = render({ set: { 'operator.watchNamespace': 'team-a' } });
    expect(operatorOwn(ms, 'ClusterRole')).toEqual(['bgtask-rel-bgtask-operator-crd']);
    expect(operatorOwn(ms, 'ClusterRoleBinding')).toEqual(['bgtask-rel-bgtask-operator-crd']);
    const unchecked = render({ set: { 'operator.watchNamespace': 'team-a', 'operator.crdCheck.enabled': false } });
    expect(operatorOwn(unchecked, 'ClusterRole')).toHaveLength(0);
    expect(operatorOwn(unchecked, 'ClusterRoleBinding')).toHaveLength(0);
    expect(operatorSettings(unchecked).crdCheckSeconds).toBe(0);
    expect(one(ms, 'Role', 'rel-bgtask-operator').metadata.namespace).toBe('team-a');
    expect(env(operatorContainer(ms)).WATCH_NAMESPACE).toBe('team-a');
    expect(find(ms, 'ServiceAccount', 'rel-bgtask-operator-runner').map((m) => m.metadata.namespace).sort()).toEqual(['bgtask', 'team-a']);
  });

  it('keeps the cluster-scoped names of a long namespace and release apart, each binding naming its own role', () => {
    // Cut to 63 characters, all three came out as the same name: the install failed, or one hook replaced the operator's RBAC.
    const namespace = 'personal-assistant-background-tasks-prod';
    const ms = render({ namespace, set: { fullnameOverride: 'assistant-bgtask-operator' } });
    const roles = find(ms, 'ClusterRole').map((r) => r.metadata.name);
    expect(roles.sort()).toEqual([`${namespace}-assistant-bgtask-operator`, `${namespace}-assistant-bgtask-operator-crd`, `${namespace}-assistant-bgtask-operator-crd-upgrade`].sort());
    for (const binding of find(ms, 'ClusterRoleBinding')) {
      expect(roles).toContain(binding.roleRef.name);
      expect(binding.metadata.name).toBe(binding.roleRef.name);
    }
    expect(new Set(find(ms, 'ClusterRoleBinding').map((b) => b.metadata.name)).size).toBe(3);
  });

  it('migrates before install and upgrade against an external database', () => {
    const job = one(render({ set: { 'credentials.database.existingSecret': 'db' } }), 'Job', 'rel-bgtask-operator-migrate');
    expect(job.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(job.spec.template.spec.initContainers).toBeUndefined();
    expect(job.spec.template.spec.automountServiceAccountToken).toBe(false);
    expect(env(job.spec.template.spec.containers[0]).DATABASE_URL).toEqual({ secretKeyRef: { name: 'db', key: 'database-url' } });
  });

  it('takes every image and pull policy from values', () => {
    const ms = render({
      set: {
        'operator.image.repository': 'registry.example/op',
        'operator.image.tag': '1.2.3',
        'operator.image.pullPolicy': 'Always',
        'runner.image.repository': 'registry.example/runner',
        'runner.image.tag': '1.2.3',
        'runner.image.pullPolicy': 'Always',
        'postgresql.enabled': true,
        'postgresql.image.repository': 'registry.example/pg',
        'redis.enabled': true,
        'redis.image.repository': 'registry.example/redis',
        'redis.image.pullPolicy': 'Never',
      },
    });
    const c = operatorContainer(ms);
    expect([c.image, c.imagePullPolicy]).toEqual(['registry.example/op:1.2.3', 'Always']);
    expect(env(c).RUNNER_IMAGE).toBe('registry.example/runner:1.2.3');
    expect(env(c).RUNNER_IMAGE_PULL_POLICY).toBe('Always'); // the runs' pods
    const images = podSpecs(ms).flatMap(({ spec }) => [...(spec.initContainers ?? []), ...spec.containers].map((x: any) => `${x.image} ${x.imagePullPolicy}`));
    expect(images.sort()).toEqual(
      [
        'registry.example/op:1.2.3 Always',
        'registry.example/op:1.2.3 Always', // CRD upgrade hook
        'registry.example/pg:15 IfNotPresent',
        'registry.example/pg:15 IfNotPresent', // the migration Job waits with pg_isready
        'registry.example/redis:7 Never',
        'registry.example/runner:1.2.3 Always', // helm test
        'registry.example/runner:1.2.3 Always', // migrations
        'registry.example/runner:1.2.3 Always', // uninstall hook
      ].sort(),
    );
  });

  it('pins every image to its digest when one is given, the operator\'s runs included', () => {
    const digest = (c: string) => `sha256:${c.repeat(64)}`;
    const ms = render({
      set: {
        'operator.image.digest': digest('a'),
        'runner.image.digest': digest('b'),
        'postgresql.enabled': true,
        'postgresql.image.digest': digest('c'),
        'redis.enabled': true,
        'redis.image.digest': digest('d'),
      },
    });
    const c = operatorContainer(ms);
    expect(c.image).toBe(`bgtask.local/operator:dev@${digest('a')}`);
    expect(env(c).RUNNER_IMAGE).toBe(`bgtask.local/task-runner:dev@${digest('b')}`);
    const images = podSpecs(ms).flatMap(({ spec }) => [...(spec.initContainers ?? []), ...spec.containers].map((x: any) => x.image as string));
    expect(images.length).toBeGreaterThan(5);
    for (const image of images) expect(image).toMatch(/^bgtask\.local\/[a-z-]+:[\w.-]+@sha256:([a-d])\1{63}$/);
    expect(() => render({ set: { 'runner.image.digest': 'sha256:short' } })).toThrow(/digest/);
  });

  it('passes runner.env to every run through the operator and to the helm test as plain values, before the credentials', () => {
    const ms = render({ set: { 'defaultTasks.enabled': true, 'runner.env.EMAIL_FROM': 'me@example.com', 'credentials.smtp.existingSecret': 'mail' } });
    expect(operatorSettings(ms).runnerEnv).toEqual([
      { name: 'EMAIL_FROM', value: 'me@example.com' },
      { name: 'SMTP_URL', valueFrom: { secretKeyRef: { name: 'mail', key: 'smtp-url', optional: true } } },
    ]);
    expect(one(ms, 'BackgroundTask', 'email-process-queue').spec.env).toBeUndefined();
    expect(one(ms, 'Pod').spec.containers[0].env).toEqual([
      { name: 'EMAIL_FROM', value: 'me@example.com' },
      { name: 'SMTP_URL', valueFrom: { secretKeyRef: { name: 'mail', key: 'smtp-url' } } },
    ]);
  });

  it('keeps a default task\'s own env in its spec, where it wins over the operator\'s', () => {
    const ms = render({ set: { 'defaultTasks.enabled': true, 'defaultTasks.tasks.email-process-queue.env[0].name': 'SMTP_URL', 'defaultTasks.tasks.email-process-queue.env[0].value': 'smtp://sink:25' } });
    expect(one(ms, 'BackgroundTask', 'email-process-queue').spec.env).toEqual([{ name: 'SMTP_URL', value: 'smtp://sink:25' }]);
  });

  it('passes runner.envFrom, volumes and mounts to the operator as JSON it accepts, and to the helm test', () => {
    const ms = render({ files: [ALL_FEATURES], set: { 'runner.env.NOTE': 'quotes " and <angles> & survive' } });
    const s = operatorSettings(ms);
    expect(s.runnerEnvFrom).toEqual([{ secretRef: { name: 'app-settings' } }, { configMapRef: { name: 'app-config' }, prefix: 'APP_' }]);
    expect(s.runnerVolumes).toEqual([{ name: 'plugins', configMap: { name: 'my-plugins' } }]);
    expect(s.runnerVolumeMounts).toEqual([{ name: 'plugins', mountPath: '/plugins', readOnly: true }]);
    expect(s.runnerEnv?.[0]).toEqual({ name: 'NOTE', value: 'quotes " and <angles> & survive' });
    const pod = one(ms, 'Pod').spec;
    expect(pod.containers[0].envFrom).toEqual(s.runnerEnvFrom);
    expect(pod.volumes).toEqual([{ name: 'tmp', emptyDir: {} }, ...s.runnerVolumes!]);
    expect(pod.containers[0].volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }, ...s.runnerVolumeMounts!]);
  });

  it('demo values (make up): bundled databases, every seed task, suspended where the demo has no LLM or SMTP', () => {
    const ms = render({ files: [DEMO] });
    const tasks = find(ms, 'BackgroundTask');
    expect(tasks).toHaveLength(12);
    expect(tasks.filter((t) => t.spec.suspend).map((t) => t.metadata.name).sort()).toEqual(['ai-process-due-tasks', 'email-process-queue', 'email-send-daily-summary', 'email-send-notifications']);
    expect(find(ms, 'Deployment').map((d) => d.metadata.name).sort()).toEqual(['rel-bgtask-operator', 'rel-bgtask-operator-postgresql', 'rel-bgtask-operator-redis']);
  });

  it('keeps a given bundled password in the database URL, escaped', () => {
    const secret = one(render({ set: { 'postgresql.enabled': true, 'postgresql.auth.password': 'p@ss/word' } }), 'Secret');
    expect(secret.stringData['database-url']).toBe('postgresql://postgres:p%40ss%2Fword@rel-bgtask-operator-postgresql:5432/bgtask');
  });

  it('leaves the CRD alone on upgrade when told to (crds.upgradeJob.enabled false)', () => {
    const ms = render({ set: { 'crds.upgradeJob.enabled': false } });
    expect(ms.filter((m) => m.metadata.name.includes('crd-upgrade'))).toEqual([]);
  });

  it('refuses runs and operator under one ServiceAccount while the report policy is on (it would refuse the operator)', () => {
    const same = { 'operator.serviceAccount.name': 'shared', 'runner.serviceAccount.name': 'shared' };
    expect(() => render({ set: same })).toThrow(/the runs and the operator use the same ServiceAccount/);
    expect(find(render({ set: { ...same, 'runner.reportPolicy.enabled': false } }), 'Deployment').length).toBeGreaterThan(0);
  });

  it('keeps the report policy on for values from a release that had none (helm upgrade --reuse-values)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chart-values-'));
    try {
      // null deletes the chart's default: what values stored by a release before the key existed give.
      writeFileSync(join(dir, 'old.yaml'), 'runner:\n  reportPolicy: null\n');
      expect(find(render({ files: [join(dir, 'old.yaml')] }), 'ValidatingAdmissionPolicy')).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bundled databases in a release outside the watched namespace', () => {
    expect(() => render({ set: { 'operator.watchNamespace': 'team-a', 'postgresql.enabled': true } })).toThrow(/install the release into that namespace/);
  });
});
