import { describe, expect, it } from 'vitest';
import { DEFAULT_FAMILIES, parseFamiliesConfig } from '../../operator/config/families.ts';
import type { RunnerSettings } from '../../operator/controller/deps.ts';
import {
  RUNNER_UID,
  desiredCronJob,
  desiredRunJob,
  effectiveSoftTimeoutSeconds,
} from '../../operator/controller/desired-cronjob.ts';
import { RUN_FINALIZER } from '../../operator/controller/labels.ts';
import { desiredHash } from '../../operator/kube/apply.ts';
import { CLEANUP, DIGEST, TASK_UID, makeTask } from './operator-controller-fixtures.ts';
import type { TaskOptions } from './operator-controller-fixtures.ts';

const settings: RunnerSettings = { runnerImage: 'bgtask.local/task-runner:dev', runnerServiceAccount: 'bgtask-runner' };

function build(spec: TaskOptions['spec'] = {}, families = DEFAULT_FAMILIES, extra: Partial<RunnerSettings> = {}) {
  const task = makeTask({ spec });
  const meta = task.spec.task === CLEANUP.name ? CLEANUP : DIGEST;
  const family = families[task.spec.task.split('.')[0] as 'email'];
  return desiredCronJob({ task, family, meta, settings: { ...settings, ...extra } });
}
const podOf = (cj: ReturnType<typeof build>) => cj.spec!.jobTemplate.spec!.template.spec!;
const containerOf = (cj: ReturnType<typeof build>) => podOf(cj).containers[0]!;
const envOf = (cj: ReturnType<typeof build>) => Object.fromEntries(containerOf(cj).env!.map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]));

describe('desiredCronJob', () => {
  it('is owned by the task (controller, blocking deletion) and labelled for the informers', () => {
    const cj = build();
    expect(cj.metadata?.ownerReferences).toEqual([
      { apiVersion: 'workers.personal-assistant.io/v1alpha1', kind: 'BackgroundTask', name: 'digest', uid: TASK_UID, controller: true, blockOwnerDeletion: true },
    ]);
    const labels = {
      'app.kubernetes.io/managed-by': 'bgtask-operator',
      'workers.personal-assistant.io/task-name': 'digest',
      'workers.personal-assistant.io/task': 'email-digest',
      'workers.personal-assistant.io/family': 'email',
    };
    expect(cj.metadata?.labels).toEqual(labels);
    expect(cj.spec?.jobTemplate.metadata?.labels).toEqual(labels);
    expect(cj.spec?.jobTemplate.spec?.template.metadata?.labels).toEqual(labels);
  });

  it('copies the schedule fields, with the time zone and history limits written out', () => {
    expect(build().spec).toMatchObject({
      schedule: '0 8 * * *',
      timeZone: 'Etc/UTC',
      suspend: false,
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 3600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 1,
    });
    expect(
      build({ timeZone: 'Europe/Berlin', suspend: true, concurrencyPolicy: 'Replace', startingDeadlineSeconds: 60, history: { successfulRuns: 0, failedRuns: 5 } }).spec,
    ).toMatchObject({ timeZone: 'Europe/Berlin', suspend: true, concurrencyPolicy: 'Replace', startingDeadlineSeconds: 60, successfulJobsHistoryLimit: 0, failedJobsHistoryLimit: 5 });
  });

  it('makes Jobs born suspended, without pod retries, bounded by the timeout', () => {
    expect(build().spec?.jobTemplate.spec).toMatchObject({ suspend: true, backoffLimit: 0, activeDeadlineSeconds: 600 });
    expect(build({ timeoutSeconds: 30 }).spec?.jobTemplate.spec?.activeDeadlineSeconds).toBe(30);
  });

  it('runs the runner with the task and its params, never restarting the pod', () => {
    const cj = build({ params: { recipients: ['a@example.com'] } });
    expect(containerOf(cj).image).toBe('bgtask.local/task-runner:dev');
    expect(containerOf(cj).args).toEqual(['run', 'email.digest', '--params', '{"recipients":["a@example.com"]}']);
    expect(containerOf(build()).args).toEqual(['run', 'email.digest', '--params', '{}']);
    expect(podOf(cj)).toMatchObject({ restartPolicy: 'Never', serviceAccountName: 'bgtask-runner' });
    expect(containerOf(cj).terminationMessagePolicy).toBe('FallbackToLogsOnError');
  });

  it('gives the runner its identity through the downward API, the annotations defaulting to a scheduled first attempt', () => {
    const cj = build({ softTimeoutSeconds: 100, timeoutSeconds: 200 });
    expect(envOf(cj)).toMatchObject({
      BGTASK_NAME: 'digest',
      BGTASK_NAMESPACE: 'metadata.namespace',
      BGTASK_RUN_ID: "metadata.labels['batch.kubernetes.io/job-name']",
      BGTASK_TRIGGER: "metadata.annotations['workers.personal-assistant.io/trigger']",
      BGTASK_ATTEMPT: "metadata.annotations['workers.personal-assistant.io/attempt']",
      BGTASK_SOFT_TIMEOUT_SECONDS: '100',
      BGTASK_TIMEOUT_SECONDS: '200', // the Job's deadline, which the runner's claims on shared rows outlast
    });
    expect(cj.spec?.jobTemplate.spec?.activeDeadlineSeconds).toBe(200);
    expect(cj.spec?.jobTemplate.spec?.template.metadata?.annotations).toEqual({
      'workers.personal-assistant.io/trigger': 'Schedule',
      'workers.personal-assistant.io/attempt': '1',
    });
  });

  it('runs restricted: non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp, read-only root with a writable /tmp', () => {
    const cj = build();
    expect(podOf(cj).securityContext).toEqual({ runAsNonRoot: true, runAsUser: RUNNER_UID, runAsGroup: RUNNER_UID, seccompProfile: { type: 'RuntimeDefault' } });
    expect(containerOf(cj).securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(podOf(cj).volumes).toContainEqual({ name: 'tmp', emptyDir: {} });
    expect(containerOf(cj).volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
  });

  it.each([
    { task: 'email.digest', requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    { task: 'maintenance.cleanup-old-sessions', requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
  ])('gives $task its family\'s resources', ({ task, requests, limits }) => {
    expect(containerOf(build({ task })).resources).toEqual({ requests, limits });
  });

  it('lets spec.resources override the family, value by value', () => {
    const cj = build({ resources: { limits: { memory: '2Gi' }, requests: { cpu: 2 } } });
    expect(containerOf(cj).resources).toEqual({ requests: { cpu: '2', memory: '512Mi' }, limits: { cpu: '1', memory: '2Gi' } });
  });

  it('places pods as the family says', () => {
    const families = parseFamiliesConfig(`
email:
  priorityClassName: batch-low
  nodeSelector: { pool: batch }
  tolerations: [{ key: batch, operator: Exists, effect: NoSchedule }]
`);
    expect(podOf(build({}, families))).toMatchObject({
      priorityClassName: 'batch-low',
      nodeSelector: { pool: 'batch' },
      tolerations: [{ key: 'batch', operator: 'Exists', effect: 'NoSchedule' }],
    });
    expect(podOf(build())).not.toHaveProperty('priorityClassName');
  });

  it('puts the operator\'s env, then the task\'s, then the run identity (which nothing can override)', () => {
    const cj = build(
      { env: [{ name: 'DIGEST_HOUR', value: '8' }, { name: 'BGTASK_RUN_ID', value: 'spoofed' }], envFrom: [{ secretRef: { name: 'smtp' } }] },
      DEFAULT_FAMILIES,
      { env: [{ name: 'TASK_PLUGINS', value: '/plugins/extra.mjs' }], envFrom: [{ configMapRef: { name: 'bgtask-runner' } }] },
    );
    const names = containerOf(cj).env!.map((e) => e.name);
    expect(names.slice(0, 3)).toEqual(['TASK_PLUGINS', 'DIGEST_HOUR', 'BGTASK_RUN_ID']);
    expect(names.at(-4)).toBe('BGTASK_NAMESPACE');
    expect(names.lastIndexOf('BGTASK_RUN_ID')).toBeGreaterThan(names.indexOf('BGTASK_RUN_ID'));
    expect(containerOf(cj).envFrom).toEqual([{ configMapRef: { name: 'bgtask-runner' } }, { secretRef: { name: 'smtp' } }]);
  });

  it('lets the task\'s spec.env win over an operator-wide variable of the same name, and keeps the rest of both', () => {
    const db = (secret: string) => ({ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: secret, key: 'database-url' } } });
    const cj = build(
      { env: [db('team-db'), { name: 'DIGEST_HOUR', value: '8' }] },
      DEFAULT_FAMILIES,
      { env: [{ name: 'REDIS_URL', value: 'redis://r' }, db('bgtask-db'), { name: 'EMAIL_FROM', value: 'ops@example.com' }] },
    );
    const env = containerOf(cj).env!;
    expect(env.filter((e) => e.name === 'DATABASE_URL')).toEqual([db('team-db')]);
    expect(env.map((e) => e.name).slice(0, 4)).toEqual(['REDIS_URL', 'EMAIL_FROM', 'DATABASE_URL', 'DIGEST_HOUR']);
    // Without an env of its own, a task gets the operator's as they are.
    expect(containerOf(build({}, DEFAULT_FAMILIES, { env: [db('bgtask-db')] })).env![0]).toEqual(db('bgtask-db'));
  });

  it('puts the operator\'s volumes, mounts and pull policy on every run, beside the scratch volume', () => {
    const cj = build({}, DEFAULT_FAMILIES, {
      imagePullPolicy: 'Always',
      volumes: [{ name: 'plugins', configMap: { name: 'my-plugins' } }],
      volumeMounts: [{ name: 'plugins', mountPath: '/plugins', readOnly: true }],
    });
    expect(containerOf(cj).imagePullPolicy).toBe('Always');
    expect(podOf(cj).volumes).toEqual([{ name: 'tmp', emptyDir: {} }, { name: 'plugins', configMap: { name: 'my-plugins' } }]);
    expect(containerOf(cj).volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }, { name: 'plugins', mountPath: '/plugins', readOnly: true }]);
    expect(containerOf(build())).not.toHaveProperty('imagePullPolicy');
    expect(containerOf(build())).not.toHaveProperty('envFrom');
  });

  it('changes when the operator-wide settings change (so a new setting is applied), and only then', () => {
    const before = build({}, DEFAULT_FAMILIES, { env: [{ name: 'REDIS_URL', value: 'redis://a' }] });
    expect(desiredHash(build({}, DEFAULT_FAMILIES, { env: [{ name: 'REDIS_URL', value: 'redis://a' }] }))).toBe(desiredHash(before));
    for (const extra of [
      { env: [{ name: 'REDIS_URL', value: 'redis://b' }] },
      { env: [{ name: 'REDIS_URL', value: 'redis://a' }], envFrom: [{ secretRef: { name: 'llm' } }] },
      { env: [{ name: 'REDIS_URL', value: 'redis://a' }], imagePullPolicy: 'Never' as const },
    ]) {
      expect(desiredHash(build({}, DEFAULT_FAMILIES, extra)), JSON.stringify(extra)).not.toBe(desiredHash(before));
    }
  });

  it('is the same object for the same inputs (so applying it again changes nothing)', () => {
    expect(build({ params: { recipients: [] } })).toEqual(build({ params: { recipients: [] } }));
  });
});

describe('effectiveSoftTimeoutSeconds', () => {
  it.each([
    { spec: {}, expected: 540, why: 'the task default' },
    { spec: { softTimeoutSeconds: 30 }, expected: 30, why: 'the spec' },
    { spec: { timeoutSeconds: 900 }, expected: 540, why: 'the default, still below a longer timeout' },
    { spec: { timeoutSeconds: 60 }, expected: 40, why: 'the runner\'s 20 s abort grace before a shorter timeout' },
    { spec: { timeoutSeconds: 10 }, expected: 5, why: 'half of a very short timeout' },
  ])('$why', ({ spec, expected }) => {
    expect(effectiveSoftTimeoutSeconds(makeTask({ spec }), DIGEST)).toBe(expected);
  });
});

describe('desiredRunJob', () => {
  const task = makeTask();
  const cronJob = build();

  it('is a suspended Job owned by the task, holding the run-accounting finalizer, with its trigger and attempt', () => {
    const job = desiredRunJob({ cronJob, task, name: 'digest-retry2-0a1b2c3d', trigger: 'Retry', attempt: 2, annotations: { 'workers.personal-assistant.io/retry-of': 'digest-29412345' } });
    expect(job.metadata).toMatchObject({
      name: 'digest-retry2-0a1b2c3d',
      namespace: 'assistant',
      finalizers: [RUN_FINALIZER],
      annotations: { 'workers.personal-assistant.io/retry-of': 'digest-29412345' },
      ownerReferences: [expect.objectContaining({ kind: 'BackgroundTask', uid: TASK_UID, controller: true })],
      labels: cronJob.spec?.jobTemplate.metadata?.labels,
    });
    expect(job.spec?.suspend).toBe(true);
    expect(job.spec?.backoffLimit).toBe(0);
    expect(job.spec?.template.metadata?.annotations).toEqual({ 'workers.personal-assistant.io/trigger': 'Retry', 'workers.personal-assistant.io/attempt': '2' });
    expect(job.spec?.template.spec?.containers[0]?.securityContext).toEqual(containerOf(cronJob).securityContext);
  });

  it('takes other runner args (params overrides) and leaves the CronJob untouched', () => {
    const before = JSON.stringify(cronJob);
    const job = desiredRunJob({ cronJob, task, name: 'digest-now-1', trigger: 'Manual', attempt: 1, args: ['run', 'email.digest', '--params', '{"subject":"hi"}'] });
    expect(job.spec?.template.spec?.containers[0]?.args).toEqual(['run', 'email.digest', '--params', '{"subject":"hi"}']);
    expect(JSON.stringify(cronJob)).toBe(before);
  });
});
