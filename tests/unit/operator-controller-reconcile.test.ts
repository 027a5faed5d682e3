// The reconcile loop against in-memory caches and a recording API: which requests one reconcile
// makes for a given world, and that a world already reconciled makes none.
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_FAMILIES, parseFamiliesConfig, type FamiliesConfig } from '../../operator/config/families.ts';
import type { CronJob, Job, Pod, RunnerSettings, Task } from '../../operator/controller/deps.ts';
import { JOB_INDEXERS, POD_INDEXERS, TASK_INDEXERS } from '../../operator/controller/indexes.ts';
import { WriteExpectations } from '../../operator/controller/expectations.ts';
import { createReconciler } from '../../operator/controller/reconcile.ts';
import { CREATED_AT_ANNOTATION as CREATED_AT } from '../../operator/controller/labels.ts';
import { IncompleteReconcileError, causedBy } from '../../operator/kube/errors.ts';
import { WritesFencedError } from '../../operator/kube/raw-api.ts';
import type { RawApi } from '../../operator/kube/raw-api.ts';
import { Store } from '../../operator/kube/store.ts';
import { compactCronJob } from '../../operator/kube/transforms.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { CATALOG, CRONJOB_UID, NS, makeJob, makePod, makeTask } from './operator-controller-fixtures.ts';

interface Call {
  method: string;
  path: string;
  body?: unknown;
  contentType?: string;
}

function world(
  opts: {
    tasks?: Task[];
    jobs?: Job[];
    pods?: Pod[];
    cronJobs?: CronJob[];
    now?: string;
    families?: FamiliesConfig;
    runner?: Partial<RunnerSettings>;
    fail?: (method: string, path: string) => Error | undefined;
    /** The apiserver's answer to a request, when the default echo will not do. */
    respond?: (method: string, path: string) => unknown;
  } = {},
) {
  const tasks = new Store<Task & KubeObject>(TASK_INDEXERS);
  const cronJobs = new Store<CronJob>();
  const jobs = new Store<Job>(JOB_INDEXERS);
  const pods = new Store<Pod>(POD_INDEXERS);
  for (const t of opts.tasks ?? []) tasks.upsert(t);
  for (const c of opts.cronJobs ?? []) cronJobs.upsert(c);
  for (const j of opts.jobs ?? []) jobs.upsert(j);
  for (const p of opts.pods ?? []) pods.upsert(p);

  const calls: Call[] = [];
  const request = vi.fn(async (method: string, path: string, o: { body?: unknown; contentType?: string } = {}) => {
    calls.push({ method, path, ...(o.body === undefined ? {} : { body: o.body }), ...(o.contentType ? { contentType: o.contentType } : {}) });
    const failure = opts.fail?.(method, path);
    if (failure) throw failure;
    const answer = opts.respond?.(method, path);
    if (answer !== undefined) return answer;
    const body = o.body as { metadata?: Record<string, unknown> } | undefined;
    if (/\/cronjobs(\/|$)/.test(path)) {
      // What a POST leaves: the operator's fields under an Update entry of its field manager.
      if (method === 'GET') return { ...cronJobs.get(NS, path.split('/').pop()!), metadata: { ...cronJobs.get(NS, path.split('/').pop()!)?.metadata, managedFields: [POSTED_FIELDS] } };
      if (Array.isArray(body)) return {}; // the JSON patch of managedFields
      // A create leaves resourceVersion 10; an apply, a new one (it changed something: the tests' applies do).
      return { ...body, metadata: { ...body?.metadata, uid: CRONJOB_UID, generation: 1, resourceVersion: method === 'POST' ? '10' : `cronjob-${calls.length}` } };
    }
    if (path.endsWith('/status')) return { metadata: { resourceVersion: `status-${calls.length}` } };
    return body ?? {};
  });
  const raw = { request } as unknown as RawApi;
  const events: { reason: string; type: string; note: string; regarding?: string }[] = [];
  const observed: unknown[] = [];
  let clock = new Date(opts.now ?? '2026-11-28T12:00:00Z');
  const expectations = new WriteExpectations();
  const makeReconciler = (runner: Partial<RunnerSettings> = {}) => createReconciler({
    clients: { raw },
    caches: { tasks, cronJobs, jobs, pods },
    families: () => opts.families ?? DEFAULT_FAMILIES,
    events: { record: (regarding, type, reason, note) => events.push({ regarding: regarding.metadata?.name, type, reason, note }), flush: async () => undefined },
    metrics: { observeRun: (run) => observed.push(run) },
    clock: () => clock,
    log: pino({ level: 'silent' }),
    settings: { runnerImage: 'bgtask.local/task-runner:dev', runnerServiceAccount: 'bgtask-runner', fieldManager: 'bgtask-operator', ...runner },
    registry: CATALOG,
    expectations,
  });
  const reconcile = makeReconciler(opts.runner);
  return {
    tasks,
    cronJobs,
    jobs,
    calls,
    expectations,
    events,
    observed,
    reconcile,
    /** A reconciler over the same caches as an operator restarted with other runner settings. */
    makeReconciler,
    setNow: (iso: string) => (clock = new Date(iso)),
    /** The body of the status patch, if one was sent. */
    statusPatch: () => calls.find((c) => c.path.endsWith('/status'))?.body as { status: Record<string, unknown> } | undefined,
    /** Feeds the writes back into the caches, as the informers would (their events end the waits for them). */
    settle() {
      for (const t of tasks.list()) expectations.forget(`${t.metadata.namespace}/${t.metadata.name}`);
      for (const call of calls) {
        const body = call.body as (KubeObject & { status?: Record<string, unknown> }) | undefined;
        // Created by POST: cached with the marker the informer's transform leaves; applied: without.
        if (call.path.endsWith('/cronjobs') && body) cronJobs.upsert(compactCronJob({ ...body, metadata: { ...body.metadata, uid: CRONJOB_UID, generation: 1, resourceVersion: '10', managedFields: [POSTED_FIELDS] } } as CronJob));
        if (call.path.includes('/cronjobs/') && call.contentType === APPLY && body) cronJobs.upsert({ ...body, metadata: { ...body.metadata, uid: CRONJOB_UID, generation: 1 } } as CronJob);
        if (call.path.endsWith('/status') && body) {
          for (const t of tasks.list()) {
            const merged = { ...t.status } as Record<string, unknown>;
            for (const [k, v] of Object.entries(body.status ?? {})) {
              if (v === null) delete merged[k];
              else merged[k] = v;
            }
            tasks.upsert({ ...t, status: merged } as Task & KubeObject);
          }
        }
      }
      calls.length = 0;
    },
  };
}

const KEY = `${NS}/digest`;
const APPLY = 'application/apply-patch+yaml';
const POSTED_FIELDS = { manager: 'bgtask-operator', operation: 'Update', apiVersion: 'batch/v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:schedule': {} } } };
const isJobCreate = (c: Call) => c.method === 'POST' && c.path.endsWith('/jobs');

describe('reconcile', () => {
  it('creates the CronJob and the status of a new task, then requeues for the next schedule', async () => {
    const w = world({ tasks: [makeTask()] });
    const result = await w.reconcile(KEY);
    expect(w.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'POST /apis/batch/v1/namespaces/assistant/cronjobs',
      'PATCH /apis/workers.personal-assistant.io/v1alpha1/namespaces/assistant/backgroundtasks/digest/status',
    ]);
    expect((w.calls[0]!.body as CronJob).metadata?.name).toBe('digest');
    expect(w.statusPatch()?.status).toMatchObject({
      family: 'email',
      cronJobName: 'digest',
      nextScheduleTime: '2026-11-29T08:00:00Z',
      succeeded: 0,
      conditions: [expect.objectContaining({ type: 'Ready', status: 'True', reason: 'Reconciled' }), expect.objectContaining({ type: 'Queued', status: 'False' })],
    });
    expect(w.events.map((e) => e.reason)).toEqual(['CronJobCreated']);
    expect(result.requeueAfterMs).toBe(3_600_000); // the next schedule is 20 h away: looked at again within the hour
  });

  it('writes nothing when the world is already as it should be', async () => {
    const w = world({ tasks: [makeTask()] });
    await w.reconcile(KEY);
    w.settle();
    await w.reconcile(KEY);
    expect(w.calls).toEqual([]);
    w.setNow('2026-11-28T13:00:00Z');
    await w.reconcile(KEY);
    expect(w.calls).toEqual([]);
  });

  it('waits for the caches to show its own writes instead of repeating them, but not past the deadline', async () => {
    const w = world({ tasks: [makeTask()] });
    await w.reconcile(KEY);
    expect(w.calls).toHaveLength(2); // the CronJob's POST and the status patch
    w.calls.length = 0;
    // Another event of the task arrives before the watch brings back either write.
    const early = await w.reconcile(KEY);
    expect(w.calls).toEqual([]);
    expect(early.requeueAfterMs).toBe(10_000);
    // The status arrives, the CronJob not yet: still waiting.
    w.expectations.observed('task', KEY);
    expect((await w.reconcile(KEY)).requeueAfterMs).toBe(10_000);
    expect(w.calls).toEqual([]);
    // Its event never comes (a relist skipped it): after the deadline the task is reconciled as usual.
    w.setNow('2026-11-28T12:00:10Z');
    await w.reconcile(KEY);
    expect(w.calls.map((c) => `${c.method} ${c.path}`)).toContain('POST /apis/batch/v1/namespaces/assistant/cronjobs');
  });

  it('stops waiting as soon as the cached object is no longer the one it wrote from', async () => {
    const w = world({ tasks: [makeTask()] });
    await w.reconcile(KEY);
    w.settle(); // both writes cached; the waits end
    const [task] = w.tasks.list();
    // A spec change: reconciled and written; then someone else's write lands before our echo.
    w.tasks.upsert({ ...task!, metadata: { ...task!.metadata, generation: 2, resourceVersion: '20' }, spec: { ...task!.spec, schedule: '30 9 * * 1-5' } });
    await w.reconcile(KEY);
    expect(w.calls.some((c) => c.path.endsWith('/status'))).toBe(true);
    // The CronJob apply's echo arrives (only the status write's is in question here).
    const apply = w.calls.findIndex((c) => c.contentType === APPLY);
    expect(w.expectations.observed('cronJob', KEY, `cronjob-${apply + 1}`)).toBe(true);
    w.calls.length = 0;
    w.tasks.upsert({ ...w.tasks.list()[0]!, metadata: { ...w.tasks.list()[0]!.metadata, resourceVersion: '21' } });
    const result = await w.reconcile(KEY);
    expect(result.requeueAfterMs).not.toBe(10_000);
  });

  it('applies the CronJob again when the operator-wide runner settings change, then writes nothing', async () => {
    const db = { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'bgtask-db', key: 'database-url', optional: true } } };
    const w = world({ tasks: [makeTask()], runner: { env: [db] } });
    await w.reconcile(KEY);
    w.settle();
    await w.reconcile(KEY);
    expect(w.calls).toEqual([]);
    // The operator restarts with another setting (helm upgrade): its first reconcile applies it.
    const restarted = w.makeReconciler({ env: [db], envFrom: [{ secretRef: { name: 'llm' } }], imagePullPolicy: 'Always' });
    await restarted(KEY);
    // The first apply to a CronJob it created hands the POST's fields to the apply entry first.
    expect(w.calls.map((c) => `${c.method} ${c.path} ${c.contentType ?? ''}`.trim())).toEqual([
      'GET /apis/batch/v1/namespaces/assistant/cronjobs/digest',
      'PATCH /apis/batch/v1/namespaces/assistant/cronjobs/digest application/json-patch+json',
      `PATCH /apis/batch/v1/namespaces/assistant/cronjobs/digest ${APPLY}`,
    ]);
    expect(w.calls[1]!.body).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '10' },
      { op: 'replace', path: '/metadata/managedFields', value: [{ ...POSTED_FIELDS, operation: 'Apply' }] },
    ]);
    const container = (w.calls[2]!.body as CronJob).spec!.jobTemplate.spec!.template.spec!.containers[0]!;
    expect(container.envFrom).toEqual([{ secretRef: { name: 'llm' } }]);
    expect(container.imagePullPolicy).toBe('Always');
    expect(container.env?.[0]).toEqual(db);
    expect(w.events.map((e) => e.reason)).toContain('CronJobUpdated');
    w.settle();
    await restarted(KEY);
    expect(w.calls).toEqual([]);
    // Restarted again with the same settings: nothing to do.
    await w.makeReconciler({ env: [db], envFrom: [{ secretRef: { name: 'llm' } }], imagePullPolicy: 'Always' })(KEY);
    expect(w.calls).toEqual([]);
  });

  it('follows a spec change with an apply', async () => {
    const w = world({ tasks: [makeTask()] });
    await w.reconcile(KEY);
    w.settle();
    const [task] = w.tasks.list();
    w.tasks.upsert({ ...task!, metadata: { ...task!.metadata, generation: 2 }, spec: { ...task!.spec, schedule: '30 9 * * 1-5' } });
    await w.reconcile(KEY);
    const apply = w.calls.find((c) => c.contentType === APPLY);
    expect((apply?.body as CronJob).spec?.schedule).toBe('30 9 * * 1-5');
    expect(w.events.map((e) => e.reason)).toContain('CronJobUpdated');
  });

  it('reports an invalid spec, keeps the CronJob, and emits a Warning', async () => {
    const w = world({ tasks: [makeTask({ spec: { task: 'email.nope' } })] });
    await w.reconcile(KEY);
    expect(w.calls.map((c) => c.path)).toEqual(['/apis/workers.personal-assistant.io/v1alpha1/namespaces/assistant/backgroundtasks/digest/status']);
    expect(w.statusPatch()?.status.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'False', reason: 'InvalidSpec', message: expect.stringContaining('spec.task: unknown task "email.nope"') }));
    expect(w.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'InvalidSpec' }));
    w.settle();
    w.events.length = 0;
    await w.reconcile(KEY);
    expect(w.calls).toEqual([]);
    expect(w.events).toEqual([]); // said once: the status already says it
  });

  it('admits waiting Jobs of the family up to its concurrency, oldest first, across tasks', async () => {
    const families = parseFamiliesConfig('email: { concurrency: 1 }');
    const other = makeTask({ name: 'other', uid: 'uid-other' });
    const w = world({
      tasks: [makeTask(), other],
      jobs: [
        makeJob('digest-2', { suspended: true, createdAt: '2026-11-28T11:00:00Z' }),
        makeJob('other-1', { task: other, suspended: true, createdAt: '2026-11-28T10:00:00Z' }),
      ],
      families,
    });
    const result = await w.reconcile(KEY);
    const admits = w.calls.filter((c) => c.path.includes('/jobs/'));
    expect(admits).toEqual([
      {
        method: 'PATCH',
        path: '/apis/batch/v1/namespaces/assistant/jobs/other-1',
        body: { metadata: { finalizers: ['workers.personal-assistant.io/run-accounting'] }, spec: { suspend: false } },
        contentType: 'application/strategic-merge-patch+json',
      },
    ]);
    expect(w.events).toContainEqual(expect.objectContaining({ reason: 'RunStarted', regarding: 'other' }));
    expect(w.events).toContainEqual(expect.objectContaining({ reason: 'RunQueued', regarding: 'digest' }));
    expect(w.statusPatch()?.status.active).toEqual([{ name: 'digest-2', runId: 'digest-2', queued: true }]);
    expect(result.requeueAfterMs).toBe(60_000);
  });

  it('lets the next waiting run in when one admission is refused, and fails only the refused run\'s task', async () => {
    const families = parseFamiliesConfig('email: { concurrency: 1 }');
    const other = makeTask({ name: 'other', uid: 'uid-other' });
    const quota = Object.assign(new Error('jobs "other-1" is forbidden: exceeded quota'), { code: 403 });
    const w = world({
      tasks: [makeTask(), other],
      jobs: [
        makeJob('other-1', { task: other, suspended: true, createdAt: '2026-11-28T10:00:00Z' }),
        makeJob('digest-2', { suspended: true, createdAt: '2026-11-28T11:00:00Z' }),
      ],
      families,
      fail: (method, path) => (method === 'PATCH' && path.endsWith('/jobs/other-1') ? quota : undefined),
    });
    // digest's reconcile: other-1 is refused, digest-2 takes the slot, digest's status is written.
    await w.reconcile(KEY);
    const admits = w.calls.filter((c) => c.method === 'PATCH' && c.path.includes('/jobs/')).map((c) => c.path.split('/').pop());
    expect(admits).toEqual(['other-1', 'digest-2']);
    expect(w.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'AdmissionFailed', regarding: 'other', note: expect.stringContaining('exceeded quota') }));
    expect(w.statusPatch()).toBeDefined();
    // other's own reconcile fails after its status, for a backoff retry; the Warning is not repeated.
    w.settle();
    w.jobs.upsert(makeJob('digest-2', { suspended: false, createdAt: '2026-11-28T11:00:00Z' }));
    await expect(w.reconcile(`${NS}/other`)).resolves.toEqual(expect.anything()); // full: nothing tried
    w.settle();
    w.jobs.remove(`${NS}/digest-2`);
    await expect(w.reconcile(`${NS}/other`)).rejects.toThrow('admitting Job assistant/other-1 failed');
    expect(w.events.filter((e) => e.reason === 'AdmissionFailed')).toHaveLength(1);
  });

  it('holds a scheduled run while a retry of the same task runs (concurrencyPolicy Forbid), not with Allow', async () => {
    for (const policy of ['Forbid', 'Allow'] as const) {
      const task = makeTask({ spec: { concurrencyPolicy: policy } });
      const w = world({
        tasks: [task],
        jobs: [
          makeJob('digest-retry2-1', { task, trigger: 'Retry', attempt: 2, createdAt: '2026-11-28T11:00:00Z' }),
          makeJob('digest-2', { task, suspended: true, createdAt: '2026-11-28T11:30:00Z' }),
        ],
      });
      await w.reconcile(KEY);
      const admitted = w.calls.some((c) => c.method === 'PATCH' && c.path.endsWith('/jobs/digest-2'));
      expect(admitted, policy).toBe(policy === 'Allow');
      if (policy === 'Forbid') {
        expect(w.statusPatch()?.status.active).toContainEqual({ name: 'digest-2', runId: 'digest-2', queued: true });
        expect(w.statusPatch()?.status.conditions).toContainEqual(
          expect.objectContaining({ type: 'Queued', status: 'True', reason: 'WaitingForRunningRun', message: 'digest-2 waits for run digest-retry2-1 to finish (concurrencyPolicy Forbid)' }),
        );
        expect(w.events).toContainEqual(expect.objectContaining({ reason: 'RunQueued', note: 'run digest-2 waits for run digest-retry2-1 of the task to finish (concurrencyPolicy Forbid)' }));
      }
    }
  });

  // concurrencyPolicy Replace: the family runs one at a time, and a reconcile's deletions are read by Job name.
  const emailOneAtATime = { ...DEFAULT_FAMILIES, email: { ...DEFAULT_FAMILIES.email, concurrency: 1 } };
  const deletedJobs = (w: ReturnType<typeof world>) => w.calls.filter((c) => c.method === 'DELETE').map((c) => c.path.split('/').pop());
  /** A run-now Job the operator made at `createdAt`, and to the millisecond at `precise` (its created-at annotation). */
  const runNowJob = (name: string, task: Task, createdAt: string, precise?: string, more: Parameters<typeof makeJob>[1] = {}) =>
    makeJob(name, { task, trigger: 'Manual', owner: 'BackgroundTask', createdAt, ...(precise ? { annotations: { [CREATED_AT]: precise } } : {}), ...more });

  it('with concurrencyPolicy Replace, a newer run of any kind replaces the older ones, running or waiting (once, with an Event); not with Allow', async () => {
    for (const policy of ['Replace', 'Allow'] as const) {
      const task = makeTask({ spec: { concurrencyPolicy: policy } });
      const jobs = [
        // A scheduled run going, a retry waiting for a slot, and a run-now behind both; one finished run.
        makeJob('digest-1', { task, createdAt: '2026-11-28T09:00:00Z', complete: '2026-11-28T09:01:00Z' }),
        makeJob('digest-2', { task, createdAt: '2026-11-28T10:00:00Z' }),
        makeJob('digest-retry2-1', { task, trigger: 'Retry', attempt: 2, owner: 'BackgroundTask', suspended: true, finalizer: true, createdAt: '2026-11-28T10:05:00Z' }),
        makeJob('digest-manual-x', { task, trigger: 'Manual', owner: 'BackgroundTask', suspended: true, finalizer: true, createdAt: '2026-11-28T10:10:00Z' }),
      ];
      const w = world({ tasks: [task], jobs, families: emailOneAtATime });
      await w.reconcile(KEY);
      const deleted = deletedJobs(w);
      if (policy === 'Allow') {
        expect(deleted).toEqual([]);
        continue;
      }
      expect(deleted).toEqual(['digest-2', 'digest-retry2-1']);
      expect(w.events.filter((e) => e.reason === 'RunReplaced').map((e) => e.note)).toEqual([
        'run digest-2 stopped: run digest-manual-x replaces it (concurrencyPolicy Replace)',
        'run digest-retry2-1 dropped before it started: run digest-manual-x replaces it (concurrencyPolicy Replace)',
      ]);
      // The next reconcile, the deletions not yet seen, deletes again (idempotent) but says nothing new.
      w.settle();
      await w.reconcile(KEY);
      expect(w.events.filter((e) => e.reason === 'RunReplaced')).toHaveLength(2);
    }
  });

  it('with concurrencyPolicy Replace, tells two run-now Jobs made in the same second apart by their precise creation, not their names', async () => {
    // Seen on kind: "long" (name ...-aeb2...) started, "short" (...-35fc...) came in the same second and was dropped for it.
    const task = makeTask({ spec: { concurrencyPolicy: 'Replace' } });
    const at = '2026-11-28T10:00:00Z';
    const jobs = [
      runNowJob('digest-now-aeb25ec5', task, at, '2026-11-28T10:00:00.120Z'),
      runNowJob('digest-now-35fc24b2', task, at, '2026-11-28T10:00:00.870Z', { suspended: true, finalizer: true }),
    ];
    const w = world({ tasks: [task], jobs, families: emailOneAtATime });
    await w.reconcile(KEY);
    expect(deletedJobs(w)).toEqual(['digest-now-aeb25ec5']);
  });

  it('with concurrencyPolicy Replace, orders by the apiserver\'s seconds first, and keeps the running run in a tie it cannot break', async () => {
    const task = makeTask({ spec: { concurrencyPolicy: 'Replace' } });
    const deletedBetween = async (runNowPrecise: string, scheduledAt: string) => {
      const w = world({ tasks: [task], jobs: [runNowJob('digest-now-1', task, '2026-11-28T10:00:00Z', runNowPrecise), makeJob('digest-2', { task, suspended: true, createdAt: scheduledAt })], families: emailOneAtATime });
      await w.reconcile(KEY);
      return deletedJobs(w);
    };
    // The operator's clock runs ahead: its run-now of 10:00:00 says 10:00:03; the CronJob's run of 10:00:01 is still the newer.
    expect(await deletedBetween('2026-11-28T10:00:03.000Z', '2026-11-28T10:00:01Z')).toEqual(['digest-now-1']);
    // The same second, one with a precise time and one without: the running one stays, the waiting one goes.
    expect(await deletedBetween('2026-11-28T10:00:00.100Z', '2026-11-28T10:00:00Z')).toEqual(['digest-2']);
  });

  it('with concurrencyPolicy Replace, a waiting run that cannot start (its task suspended) replaces nothing', async () => {
    const task = makeTask({ spec: { concurrencyPolicy: 'Replace', suspend: true } });
    const w = world({
      tasks: [task],
      jobs: [
        runNowJob('digest-now-1', task, '2026-11-28T10:00:00Z'),
        makeJob('digest-2', { task, suspended: true, createdAt: '2026-11-28T10:01:00Z' }),
      ],
    });
    await w.reconcile(KEY);
    expect(w.calls.filter((c) => c.method === 'DELETE')).toEqual([]);
  });

  it('with concurrencyPolicy Replace, admission passes over a waiting run a newer one replaces', async () => {
    const task = makeTask({ spec: { concurrencyPolicy: 'Replace' } });
    const w = world({
      tasks: [task],
      jobs: [
        makeJob('digest-2', { task, suspended: true, createdAt: '2026-11-28T10:00:00Z' }),
        runNowJob('digest-now-1', task, '2026-11-28T10:00:05Z', undefined, { suspended: true, finalizer: true }),
      ],
      families: emailOneAtATime,
    });
    await w.reconcile(KEY);
    const admitted = w.calls.filter((c) => c.method === 'PATCH' && c.path.includes('/jobs/')).map((c) => c.path.split('/').pop());
    expect(admitted).toEqual(['digest-now-1']);
    expect(deletedJobs(w)).toEqual(['digest-2']);
  });

  it('does not admit a waiting run of an earlier task of the same name (deleted, not yet collected)', async () => {
    const earlier = makeTask({ uid: 'uid-earlier' });
    const w = world({ tasks: [makeTask()], jobs: [makeJob('manual-old', { task: earlier, owner: 'BackgroundTask', suspended: true, finalizer: true })] });
    await w.reconcile(KEY);
    expect(w.calls.filter((c) => c.path.includes('/jobs/manual-old') && c.method === 'PATCH' && JSON.stringify(c.body).includes('"suspend":false'))).toEqual([]);
    expect(w.events).not.toContainEqual(expect.objectContaining({ reason: 'RunStarted' }));
    // It never started and never will: deleted (a CronJob taken over from the earlier task would count it as active).
    expect(w.calls.filter((c) => c.method === 'DELETE').map((c) => c.path)).toEqual(['/apis/batch/v1/namespaces/assistant/jobs/manual-old']);
  });

  it('does not admit the waiting runs of a suspended task', async () => {
    const w = world({ tasks: [makeTask({ spec: { suspend: true } })], jobs: [makeJob('digest-2', { suspended: true })] });
    await w.reconcile(KEY);
    expect(w.calls.filter((c) => c.path.includes('/jobs/'))).toEqual([]);
  });

  it('counts a finished run once, with a metric and an Event', async () => {
    const job = makeJob('digest-1', { createdAt: '2026-11-28T08:00:00Z', complete: '2026-11-28T08:00:40Z' });
    const w = world({ tasks: [makeTask()], jobs: [job], pods: [makePod(job, { terminated: { exitCode: 0 } })] });
    await w.reconcile(KEY);
    expect(w.statusPatch()?.status).toMatchObject({ succeeded: 1, lastSuccessfulTime: '2026-11-28T08:00:40Z', consecutiveFailures: 0 });
    expect(w.observed).toEqual([{ task: 'email.digest', family: 'email', outcome: 'Succeeded', durationSeconds: 40 }]);
    w.settle();
    await w.reconcile(KEY);
    expect(w.observed).toHaveLength(1);
    expect(w.calls).toEqual([]);
  });

  it('schedules a retry after the delay, then starts it as a suspended Job with attempt 2', async () => {
    const task = makeTask({ spec: { retry: { delaySeconds: 120, backoff: 'Fixed' } } });
    const job = makeJob('digest-1', { task, createdAt: '2026-11-28T11:58:00Z', failed: { at: '2026-11-28T11:59:00Z' } });
    const w = world({ tasks: [task], jobs: [job], pods: [makePod(job, { terminated: { exitCode: 1 } })] });
    const waiting = await w.reconcile(KEY);
    expect(waiting.requeueAfterMs).toBe(60_000);
    expect(w.events).toContainEqual(expect.objectContaining({ reason: 'RetryScheduled' }));
    expect(w.calls.some(isJobCreate)).toBe(false);

    w.settle();
    w.setNow('2026-11-28T12:01:00Z');
    await w.reconcile(KEY);
    const create = w.calls.find(isJobCreate);
    expect(create?.path).toBe('/apis/batch/v1/namespaces/assistant/jobs');
    const retry = create?.body as Job;
    expect(retry.metadata?.name).toMatch(/^digest-retry2-[0-9a-f]{8}$/);
    expect(retry.metadata?.annotations).toEqual({ 'workers.personal-assistant.io/retry-of': 'digest-1', 'workers.personal-assistant.io/created-at': '2026-11-28T12:01:00.000Z' });
    expect(retry.spec?.suspend).toBe(true);
    expect(retry.spec?.template.metadata?.annotations).toMatchObject({ 'workers.personal-assistant.io/trigger': 'Retry', 'workers.personal-assistant.io/attempt': '2' });
    expect(w.events).toContainEqual(expect.objectContaining({ reason: 'RetryStarted' }));
  });

  it("retries a failed run-now with its params overrides, even when history keeps no failed Job", async () => {
    const task = makeTask({ spec: { retry: { delaySeconds: 120, backoff: 'Fixed' }, history: { successfulRuns: 0, failedRuns: 0 } } });
    const manual = makeJob('digest-now-1', { task, owner: 'BackgroundTask', trigger: 'Manual', createdAt: '2026-11-28T11:58:00Z', failed: { at: '2026-11-28T11:59:00Z' } });
    manual.spec!.template.spec!.containers[0]!.args = ['run', 'email.digest', '--params', '{"note":"override"}'];
    const w = world({ tasks: [task], jobs: [manual], pods: [makePod(manual, { terminated: { exitCode: 1 } })] });
    await w.reconcile(KEY);
    expect(w.calls.some((c) => c.method === 'DELETE')).toBe(false); // kept while its retry waits
    w.settle();
    w.setNow('2026-11-28T12:01:00Z');
    await w.reconcile(KEY);
    const retry = w.calls.find(isJobCreate)?.body as Job;
    expect(retry.spec?.template.spec?.containers[0]?.args).toEqual(['run', 'email.digest', '--params', '{"note":"override"}']);
  });

  it('never retries invalid input', async () => {
    const job = makeJob('digest-1', { createdAt: '2026-11-28T08:00:00Z', failed: { at: '2026-11-28T08:00:10Z' } });
    const w = world({ tasks: [makeTask()], jobs: [job], pods: [makePod(job, { terminated: { exitCode: 2 } })] });
    await w.reconcile(KEY);
    expect(w.calls.some(isJobCreate)).toBe(false);
    expect(w.statusPatch()?.status.lastRun).toMatchObject({ outcome: 'InvalidInput' });
  });

  it('answers a run-now token with one Job and remembers the token', async () => {
    const w = world({ tasks: [makeTask({ annotations: { 'workers.personal-assistant.io/run-now': '1764324000' } })] });
    await w.reconcile(KEY);
    const create = w.calls.find(isJobCreate);
    expect((create?.body as Job).spec?.template.metadata?.annotations).toMatchObject({ 'workers.personal-assistant.io/trigger': 'Manual', 'workers.personal-assistant.io/attempt': '1' });
    const annotate = w.calls.find((c) => c.path.endsWith('/backgroundtasks/digest'));
    expect(annotate?.body).toEqual({ metadata: { annotations: { 'workers.personal-assistant.io/run-now-handled': '1764324000' } } });
  });

  it('writes the status on top of the run-now annotation it just wrote, not from the copy before it', async () => {
    const task = { ...makeTask({ annotations: { 'workers.personal-assistant.io/run-now': '1764324000' } }), status: { succeeded: 0 } } as Task;
    task.metadata.resourceVersion = '41';
    const annotated = (status: unknown) => ({ ...task, metadata: { ...task.metadata, resourceVersion: '42' }, status });
    const w = world({ tasks: [task], respond: (method, path) => (method === 'PATCH' && path.endsWith('/backgroundtasks/digest') ? annotated(task.status) : undefined) });
    await w.reconcile(KEY);
    expect((w.statusPatch() as unknown as { metadata: { resourceVersion: string } }).metadata.resourceVersion).toBe('42');
    // Someone else's status write came in between: the 409 (and a reconcile from the new copy) is right.
    const raced = world({ tasks: [task], respond: (method, path) => (method === 'PATCH' && path.endsWith('/backgroundtasks/digest') ? annotated({ succeeded: 1 }) : undefined) });
    await raced.reconcile(KEY);
    expect((raced.statusPatch() as unknown as { metadata: { resourceVersion: string } }).metadata.resourceVersion).toBe('41');
  });

  it('lifts its finalizers when the task is gone, and lets the family\'s waiting runs in', async () => {
    const gone = makeJob('digest-1', { complete: '2026-11-28T11:00:00Z', deleting: true });
    const other = makeTask({ name: 'other', uid: 'uid-other' });
    const waiting = makeJob('other-1', { task: other, suspended: true });
    const w = world({ tasks: [other], jobs: [gone, waiting], families: parseFamiliesConfig('email: { concurrency: 1 }') });
    expect(await w.reconcile(KEY)).toEqual({});
    expect(w.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'PATCH /apis/batch/v1/namespaces/assistant/jobs/digest-1',
      'PATCH /apis/batch/v1/namespaces/assistant/jobs/other-1',
    ]);
    expect(w.calls[0]!.body).toEqual({ metadata: { '$deleteFromPrimitiveList/finalizers': ['workers.personal-assistant.io/run-accounting'] } });
  });

  it("offers its family the slot when a gone task's last Job has left the cache too", async () => {
    const other = makeTask({ name: 'other', uid: 'uid-other' });
    const running = makeJob('digest-1', { createdAt: '2026-11-28T11:00:00Z' });
    const w = world({ tasks: [makeTask(), other], jobs: [running, makeJob('other-1', { task: other, suspended: true })], families: parseFamiliesConfig('email: { concurrency: 1 }') });
    await w.reconcile(KEY); // seen alive, in family email, its run taking the only slot
    expect(w.calls.some((c) => c.path.endsWith('/jobs/other-1'))).toBe(false);
    w.settle();
    w.tasks.remove(KEY);
    w.jobs.remove(`${NS}/digest-1`); // deleted with it, and already gone from the cache
    expect(await w.reconcile(KEY)).toEqual({});
    expect(w.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['PATCH /apis/batch/v1/namespaces/assistant/jobs/other-1']);
  });

  it('offers the slot again on the deletion of a gone task\'s last Job, when its first reconcile as gone still saw that Job', async () => {
    const other = makeTask({ name: 'other', uid: 'uid-other' });
    const running = makeJob('digest-1', { createdAt: '2026-11-28T11:00:00Z', deleting: true });
    const w = world({ tasks: [makeTask(), other], jobs: [running, makeJob('other-1', { task: other, suspended: true })], families: emailOneAtATime });
    await w.reconcile(KEY); // seen alive, in family email
    w.settle();
    w.tasks.remove(KEY);
    await w.reconcile(KEY); // gone; its run still in the cache, taking the only slot
    expect(w.calls.some((c) => c.path.endsWith('/jobs/other-1'))).toBe(false);
    w.settle();
    w.jobs.remove(`${NS}/digest-1`); // the Job's deletion brings the key back once more
    await w.reconcile(KEY);
    expect(w.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['PATCH /apis/batch/v1/namespaces/assistant/jobs/other-1']);
  });

  it('keeps the finalizer of a gone task\'s Job while its pod runs, and has the pod stopped first when the Job is deleted in the background', async () => {
    const deleted = makeJob('digest-1', { deleting: true });
    const orphan = makeJob('digest-2', { createdAt: '2026-11-28T09:00:00Z' }); // not (yet) deleted
    const stopped = makeJob('digest-3', { createdAt: '2026-11-28T10:00:00Z', deleting: true });
    const w = world({ jobs: [deleted, orphan, stopped], pods: [makePod(deleted), makePod(orphan), makePod(stopped, { terminated: { exitCode: 143 } })] });
    await w.reconcile(KEY);
    expect(w.calls.map((c) => `${c.method} ${c.path} ${JSON.stringify(c.body)}`).sort()).toEqual([
      'DELETE /apis/batch/v1/namespaces/assistant/jobs/digest-1 {"propagationPolicy":"Foreground"}',
      'PATCH /apis/batch/v1/namespaces/assistant/jobs/digest-3 {"metadata":{"$deleteFromPrimitiveList/finalizers":["workers.personal-assistant.io/run-accounting"]}}',
    ]);
  });

  it('keeps the finalizer of a Job deleted before it finished until its pod has stopped, asking once for the pods to go first', async () => {
    const task = makeTask();
    const job = makeJob('digest-1', { createdAt: '2026-11-28T11:00:00Z', deleting: true });
    const w = world({ tasks: [task], jobs: [job], pods: [makePod(job)] });
    await w.reconcile(KEY);
    expect(w.calls.filter((c) => c.path.includes('/jobs/')).map((c) => `${c.method} ${JSON.stringify(c.body)}`)).toEqual(['DELETE {"propagationPolicy":"Foreground"}']);
    // The garbage collector's finalizer is on it now: nothing more to ask while the pod stops.
    w.settle();
    w.jobs.upsert({ ...job, metadata: { ...job.metadata, finalizers: [...job.metadata!.finalizers!, 'foregroundDeletion'] } });
    await w.reconcile(KEY);
    expect(w.calls.filter((c) => c.path.includes('/jobs/'))).toEqual([]);
  });

  it('lifts the finalizer of a Job deleted with its pods orphaned, without deleting it again (its pods are no longer its own), once its cancellation is counted', async () => {
    const job = makeJob('digest-1', { createdAt: '2026-11-28T11:00:00Z', deleting: true });
    const w = world({ tasks: [makeTask()], jobs: [job], pods: [makePod(job, { orphaned: true })], now: '2026-11-28T12:00:10Z' });
    await w.reconcile(KEY);
    expect(w.statusPatch()?.status).toMatchObject({ cancelled: 1, lastCancellationTime: '2026-11-28T12:00:00Z', lastRun: { runId: 'digest-1', outcome: 'Cancelled' } });
    expect(w.calls.filter((c) => c.path.includes('/jobs/'))).toEqual([]); // the count is not stored yet
    w.settle();
    await w.reconcile(KEY);
    expect(w.calls.filter((c) => c.path.includes('/jobs/')).map((c) => c.method)).toEqual(['PATCH']);
  });

  it('admits one run of a Forbid task waiting in two families, the other seeing it admitted before the cache does', async () => {
    const moved = makeTask({ spec: { task: 'maintenance.cleanup-old-sessions' } });
    const jobs = [
      makeJob('digest-2', { task: moved, family: 'email', suspended: true, createdAt: '2026-11-28T11:00:00Z' }),
      makeJob('digest-3', { task: moved, suspended: true, createdAt: '2026-11-28T11:30:00Z' }),
    ];
    const w = world({ tasks: [moved], jobs });
    await w.reconcile(KEY);
    expect(w.calls.filter((c) => c.path.includes('/jobs/')).map((c) => `${c.method} ${c.path.split('/').pop()}`)).toEqual(['PATCH digest-3']);
  });

  it('admits the runs a task moved to another family left waiting in the old one', async () => {
    const moved = makeTask({ spec: { task: 'maintenance.cleanup-old-sessions' } });
    const w = world({ tasks: [moved], jobs: [makeJob('digest-2', { task: moved, family: 'email', suspended: true })] });
    await w.reconcile(KEY);
    expect(w.calls.filter((c) => c.path.includes('/jobs/')).map((c) => `${c.method} ${c.path} ${JSON.stringify(c.body)}`)).toEqual([
      `PATCH /apis/batch/v1/namespaces/assistant/jobs/digest-2 ${JSON.stringify({ metadata: { finalizers: ['workers.personal-assistant.io/run-accounting'] }, spec: { suspend: false } })}`,
    ]);
  });

  it('does not start a run of a task moved to another family while its run in the old family goes (concurrencyPolicy Forbid)', async () => {
    const moved = makeTask({ spec: { task: 'maintenance.cleanup-old-sessions' } });
    const going = makeJob('digest-1', { task: moved, family: 'email', createdAt: '2026-11-28T11:00:00Z' });
    const w = world({ tasks: [moved], jobs: [going, makeJob('digest-2', { task: moved, suspended: true, createdAt: '2026-11-28T11:30:00Z' })], pods: [makePod(going)] });
    await w.reconcile(KEY);
    expect(w.calls.filter((c) => c.path.includes('/jobs/'))).toEqual([]);
    expect((w.statusPatch()?.status.conditions as { type: string; reason: string }[]).find((c) => c.type === 'Queued')?.reason).toBe('WaitingForRunningRun');
  });

  it("neither retries nor reports a run of an earlier task of the same name that its runner wrote into this one's status", async () => {
    const created = '2026-11-28T11:59:50Z';
    const earlier = { runId: 'digest-29400000', trigger: 'Schedule', attempt: 1, startTime: '2026-11-28T11:58:00.000Z', completionTime: '2026-11-28T11:59:55.000Z', outcome: 'Interrupted', message: 'stopped by SIGTERM' };
    const task = makeTask({ createdAt: created, spec: { retry: { delaySeconds: 1, backoff: 'Fixed' } }, status: { lastRun: earlier } as Task['status'] });
    const w = world({ tasks: [task], now: '2026-11-28T12:00:00Z' });
    await w.reconcile(KEY);
    expect(w.calls.some(isJobCreate)).toBe(false);
    const patch = w.statusPatch()!.status;
    expect('lastRun' in patch && patch.lastRun === null).toBe(true); // removed
    expect((patch.conditions as { type: string }[]).map((c) => c.type)).not.toContain('LastRunSucceeded');
    // The same report from a run of this task is its news, and is retried.
    const own = world({ tasks: [makeTask({ createdAt: '2026-11-28T11:00:00Z', spec: { retry: { delaySeconds: 1, backoff: 'Fixed' } }, status: { lastRun: earlier } as Task['status'] })], now: '2026-11-28T12:00:00Z' });
    await own.reconcile(KEY);
    expect(own.calls.some(isJobCreate)).toBe(true);
  });

  it('writes the status and says why when a run-now Job cannot be created, then fails for a retry no later than its next moment', async () => {
    const quota = Object.assign(new Error('jobs "digest-now" is forbidden: exceeded quota'), { code: 403 });
    const finished = makeJob('digest-1', { createdAt: '2026-11-28T08:00:00Z', complete: '2026-11-28T08:00:40Z' });
    const w = world({
      tasks: [makeTask({ annotations: { 'workers.personal-assistant.io/run-now': '1764324000' } })],
      jobs: [finished],
      fail: (method, path) => (method === 'POST' && path.endsWith('/jobs') ? quota : undefined),
    });
    const failure = await w.reconcile(KEY).then(() => undefined, (err: unknown) => err);
    expect(failure).toBeInstanceOf(IncompleteReconcileError);
    expect((failure as IncompleteReconcileError).message).toContain('exceeded quota');
    expect((failure as IncompleteReconcileError).requeueAfterMs).toBe(3_600_000);
    expect(w.statusPatch()?.status).toMatchObject({ succeeded: 1 }); // the finished run is counted all the same
    expect(w.calls.some((c) => c.path.endsWith('/backgroundtasks/digest'))).toBe(false); // the token stays unanswered: tried again
    expect(w.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'RunNowFailed', note: expect.stringContaining('exceeded quota') }));
  });

  it('stops at once, saying nothing, when its writes are fenced (leadership lost)', async () => {
    const fenced = new WritesFencedError('writes stopped: leadership lost: renew deadline passed');
    const w = world({ tasks: [makeTask()], fail: () => fenced });
    const failure = await w.reconcile(KEY).then(() => undefined, (err: unknown) => err);
    expect(causedBy(failure, WritesFencedError)).toBe(true);
    expect(failure).not.toBeInstanceOf(IncompleteReconcileError);
    expect(w.calls.map((c) => c.method)).toEqual(['POST']); // the CronJob create, refused; no status write
    expect(w.events).toEqual([]);
  });

  it('goes on to housekeeping when the status write fails, and fails at the end', async () => {
    const stale = Object.assign(new Error('the object has been modified'), { code: 409 });
    const w = world({ tasks: [makeTask()], fail: (method, path) => (path.endsWith('/status') ? stale : undefined) });
    const failure = await w.reconcile(KEY).then(() => undefined, (err: unknown) => err);
    expect(failure).toBeInstanceOf(IncompleteReconcileError);
    expect((failure as IncompleteReconcileError).requeueAfterMs).toBe(3_600_000);
  });

  it('keeps the moment a retry is due when the CronJob cannot be applied', async () => {
    const forbidden = Object.assign(new Error('cronjobs.batch "digest" is forbidden'), { code: 403 });
    const task = makeTask({ spec: { retry: { delaySeconds: 120, backoff: 'Fixed' } } });
    const job = makeJob('digest-1', { task, createdAt: '2026-11-28T11:58:00Z', failed: { at: '2026-11-28T11:59:00Z' } });
    const w = world({ tasks: [task], jobs: [job], pods: [makePod(job, { terminated: { exitCode: 1 } })], fail: (method, path) => (path.includes('/cronjobs') ? forbidden : undefined) });
    const failure = await w.reconcile(KEY).then(() => undefined, (err: unknown) => err);
    expect(failure).toBeInstanceOf(IncompleteReconcileError);
    expect((failure as IncompleteReconcileError).requeueAfterMs).toBe(60_000);
  });

  it('with an invalid spec, reports the next time of the CronJob kept from before', async () => {
    const w = world({ tasks: [makeTask()] });
    await w.reconcile(KEY);
    w.settle();
    const cached = w.tasks.get(NS, 'digest')!;
    w.tasks.upsert({ ...cached, metadata: { ...cached.metadata, generation: 2 }, spec: { ...cached.spec, task: 'email.nope' } });
    const result = await w.reconcile(KEY);
    expect(w.statusPatch()?.status.conditions).toContainEqual(expect.objectContaining({ reason: 'InvalidSpec' }));
    w.settle();
    expect(w.tasks.get(NS, 'digest')?.status?.nextScheduleTime).toBe('2026-11-29T08:00:00Z');
    expect(result.requeueAfterMs).toBe(3_600_000);
  });

  it('lifts the finalizer of a deleted Job only once the stored status has counted it', async () => {
    const job = makeJob('digest-1', { createdAt: '2026-11-28T08:00:00Z', complete: '2026-11-28T08:00:40Z', deleting: true });
    const w = world({ tasks: [makeTask()], jobs: [job] });
    await w.reconcile(KEY);
    expect(w.calls.some((c) => c.path.endsWith('/jobs/digest-1'))).toBe(false);
    w.settle();
    await w.reconcile(KEY);
    expect(w.calls.map((c) => c.path)).toEqual(['/apis/batch/v1/namespaces/assistant/jobs/digest-1']);
  });

  it('fails the reconcile (for a backoff retry) when the CronJob cannot be applied, after saying so in the status', async () => {
    const forbidden = Object.assign(new Error('cronjobs.batch "digest" is forbidden'), { code: 403 });
    const w = world({ tasks: [makeTask()], fail: (method, path) => (path.includes('/cronjobs') ? forbidden : undefined) });
    await expect(w.reconcile(KEY)).rejects.toThrow('creating CronJob assistant/digest failed');
    expect(w.statusPatch()?.status.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'False', reason: 'CronJobFailed', message: expect.stringContaining('forbidden') }));
    expect(w.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'CronJobFailed' }));
  });
});
