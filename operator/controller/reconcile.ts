// The reconcile loop of a BackgroundTask, top to bottom. Given a task's key it reads the world
// from the informer caches and makes it so:
//   1. the task gone → lift our finalizers from its Jobs once their pods have stopped (owner
//      references let the garbage collector delete the CronJob and Jobs) and let its family's
//      waiting runs take the slots;
//      the caches not yet showing this reconciler's last writes of the task → wait for them
//      (expectations.ts);
//   2. validate what the CRD schema cannot (registry, params, schedule, time zone);
//   3. compute the desired CronJob and apply it only if it differs (an invalid spec keeps the old one);
//   4. admit the family's waiting Jobs while it has free slots (and those of a family it was in);
//   5. start a run-now Job or a due retry;
//   6. rebuild the status from the runs and patch it only if it differs; count finished runs once;
//   7. lift finalizers of counted Jobs being deleted once their pods have stopped (stopping the
//      pods of Jobs deleted before they finished), delete our own Jobs beyond spec.history;
//   8. requeue at the next moment that matters: the next schedule, a retry's due time, a run
//      becoming countable, a queued run's recheck — never sooner than needed.
// The pure parts (desired-cronjob, runs, status, admission, retries, run-now, validate,
// schedule) hold the detail and their table tests.
import { FAMILIES, KIND as TASK_KIND, type Family } from '../../crds/schema.ts';
import { Applier, desiredHash } from '../kube/apply.ts';
import { IncompleteReconcileError, causedBy, describeError } from '../kube/errors.ts';
import { jsonEqual } from '../kube/json.ts';
import { WritesFencedError } from '../kube/raw-api.ts';
import { splitKey } from '../kube/keys.ts';
import { FamilyAdmission, isFinished, mayTakeSlot } from './admission.ts';
import type { CronJob, Job, Pod, ReconcileDeps, Task } from './deps.ts';
import { desiredCronJob, desiredRunJob } from './desired-cronjob.ts';
import { ABSENT } from './expectations.ts';
import { planDeletions, planHousekeeping, releaseUncountedAt } from './housekeeping.ts';
import { JOBS_BY_TASK, PODS_BY_JOB } from './indexes.ts';
import { CREATED_AT_ANNOTATION, FAMILY_LABEL, RETRY_OF_ANNOTATION, RUN_FINALIZER, RUN_NOW_HANDLED_ANNOTATION, RUN_NOW_TOKEN_ANNOTATION, TASK_NAME_LABEL } from './labels.ts';
import { Announced } from './memory.ts';
import { cronJobName } from './names.ts';
import { RETRYABLE_OUTCOMES, decideRetry, retryPolicy } from './retries.ts';
import { supersededRuns } from './replace.ts';
import { planRunNow } from './run-now.ts';
import { SpecMemo } from './spec-memo.ts';
import { newestRun, recordedLastRun, runsOf, type Run } from './runs.ts';
import { compileSchedule, nextScheduleTime } from './schedule.ts';
import { CONDITION_READY, buildStatus, countedThrough, type NotReady } from './status.ts';
import { validateTask, type Validation } from './validate.ts';
import { jobWrites, taskWrites } from './writes.ts';

export type { ReconcileDeps } from './deps.ts';

/** A task with waiting runs is looked at again this often, in case a slot freed without an event reaching it. */
const QUEUED_RECHECK_MS = 60_000;
/** Wake a moment after the CronJob controller does (it pads by 100 ms), to see the Job it made. */
const AFTER_SCHEDULE_MS = 1_000;
const MIN_REQUEUE_MS = 500;
/** Far-off moments are looked at again within this bound (timers cap near 24.8 days anyway). */
const MAX_REQUEUE_MS = 3_600_000;
const DEFAULT_HISTORY = { successfulRuns: 3, failedRuns: 1 };

export function createReconciler(deps: ReconcileDeps): (key: string) => Promise<{ requeueAfterMs?: number }> {
  const { caches, settings, log, events, expectations } = deps;
  const fieldManager = settings.fieldManager;
  const applier = new Applier({ raw: deps.clients.raw, log, fieldManager });
  const jobs = jobWrites(deps.clients.raw);
  const tasks = taskWrites(deps.clients.raw);
  const admission = new FamilyAdmission({ jobs: caches.jobs, admit: (job) => jobs.admit(job, fieldManager), now: () => deps.clock().getTime() });
  const announced = new Announced();
  /** The family each live task was last seen in: its deletion frees a slot there even once its Jobs are gone. */
  const familyOfTask = new Map<string, Family>();
  const specs = new SpecMemo<{ validation: Validation; desired?: CronJob; hash?: string }>();

  return async function reconcile(key) {
    const { namespace, name } = splitKey(key);
    const now = deps.clock();
    const task = namespace === undefined ? undefined : caches.tasks.get(namespace, name);
    const labelled = caches.jobs.byIndex(JOBS_BY_TASK, key);

    // 1. Gone, or going.
    if (!task || task.metadata.deletionTimestamp) {
      expectations.forget(key);
      specs.forget(task?.metadata.uid);
      await Promise.all(leftoverChores(runsOf(labelled, podsOf, undefined)));
      // Its last Job may be gone from the cache already (that deletion brought us here): the
      // family it was seen in is offered the slot it may have freed too.
      const families = new Set(familiesOf(labelled));
      const seen = familyOfTask.get(key);
      if (seen) families.add(seen);
      // Forgotten only once its last Job has left the cache: that deletion may free the slot.
      if (labelled.length === 0) familyOfTask.delete(key);
      for (const family of families) await admitFamily(family);
      return {};
    }
    const cronName = cronJobName(name);
    let cronJob = caches.cronJobs.get(namespace, cronName);
    // Our last writes not in the caches yet: their events bring the task back (or the wait ends).
    const waitMs = Math.max(
      expectations.waitMs('task', key, task.metadata.resourceVersion ?? ABSENT, now.getTime()),
      expectations.waitMs('cronJob', key, cronJob?.metadata?.resourceVersion ?? ABSENT, now.getTime()),
    );
    if (waitMs > 0) return { requeueAfterMs: waitMs };
    const { own, stale } = partitionByIncarnation(labelled, task);
    const family = familyOf(task);
    if (family) familyOfTask.set(key, family);

    // 2. Validate (and, when valid, compute the desired CronJob): once per spec.
    const families = deps.families();
    const { validation, desired, hash } = specs.get(task, families, () => {
      const v = validateTask(task, deps.registry, families, now.getTime());
      if (!v.ok) return { validation: v };
      const d = desiredCronJob({ task, family: v.familyConfig, meta: v.meta, settings });
      return { validation: v, desired: d, hash: desiredHash(d) };
    });
    let notReady: NotReady | undefined;
    if (!validation.ok) {
      notReady = { reason: 'InvalidSpec', message: validation.message };
      if (!alreadySaid(task, notReady)) events.record(task, 'Warning', 'InvalidSpec', `${validation.message}; the CronJob is left as it was`, 'Validate');
    }

    // 3. The CronJob.
    // Writes that failed: the reconcile goes on (the status says what it can) and fails at the end.
    const failures: unknown[] = [];
    // Another event of the task's objects arrived while a write of ours was in flight.
    let again = false;
    if (validation.ok && desired) {
      try {
        const basis = cronJob?.metadata?.resourceVersion ?? ABSENT;
        const write = await expectations.write('cronJob', key, basis, now.getTime(), () => applier.apply(desired, cronJob, hash), (r) => (r.changed ? r.object.metadata?.resourceVersion : undefined));
        const applied = write.result;
        again = write.again;
        if (applied.changed) {
          events.record(task, 'Normal', cronJob ? 'CronJobUpdated' : 'CronJobCreated', `CronJob ${cronName} ${cronJob ? 'updated' : 'created'}: ${task.spec.schedule} (${desired.spec?.timeZone})`, 'Apply');
          cronJob = applied.object;
        }
      } catch (err) {
        if (causedBy(err, WritesFencedError)) throw err; // not ours to write any more: nothing to report
        failures.push(err);
        notReady = { reason: 'CronJobFailed', message: `applying CronJob ${cronName} failed: ${describeError((err as Error).cause ?? err)}` };
        if (!alreadySaid(task, notReady)) events.record(task, 'Warning', 'CronJobFailed', notReady.message, 'Apply');
      }
    }

    // 4. Family admission: of the task's family, and of any other its runs wait in (a task moved
    // to another family keeps its waiting Jobs in the old one, where nobody else may look).
    let slots: Awaited<ReturnType<typeof admitFamily>> | undefined;
    for (const f of new Set([...(family ? [family] : []), ...familiesOf(own)])) {
      const outcome = await admitFamily(f);
      if (f === family) slots = outcome;
      // A refused admission of one of this task's runs is retried with backoff, after the status.
      failures.push(...outcome.failed.filter((x) => x.job.metadata?.labels?.[TASK_NAME_LABEL] === name && x.job.metadata?.namespace === namespace).map((x) => x.error));
    }

    // 5. Run-now and retries.
    const recorded = recordedLastRun(task);
    const runs = runsOf(own, podsOf, recorded);
    let statusBase: Task = task;
    const newest = newestRun(runs, recorded);
    let retryDueAt: number | undefined;
    if (validation.ok && desired) {
      const annotated = await startRunNow(task, validation, desired).catch((err: unknown) => failed(failures, task, err, 'RunNowFailed', 'starting the run-now Job failed'));
      // The token's annotation moved the task on: the status is written on top of that version
      // (when nothing else changed), not refused as computed from a stale copy.
      const version = annotated?.metadata?.resourceVersion;
      if (version && jsonEqual(annotated.status, task.status)) statusBase = { ...task, metadata: { ...task.metadata, resourceVersion: version } };
      retryDueAt = await startDueRetry(task, validation, desired, runs, newest, now.getTime()).catch((err: unknown) => failed(failures, task, err, 'RetryFailed', 'starting the retry Job failed'));
    }
    if (task.spec.concurrencyPolicy === 'Replace') await replaceSuperseded(task, runs, failures);

    // 6. Status. With an invalid spec the CronJob kept from before still fires: its next time is the truth.
    const schedule = validation.ok ? validation.schedule : keptSchedule(cronJob);
    const next = schedule && !task.spec.suspend && !cronJob?.spec?.suspend ? nextScheduleTime(schedule, earliestSchedule(cronJob, now), now.getTime()) : undefined;
    const { status, folded, foldAt } = buildStatus({
      task,
      family,
      cronJobName: cronName,
      cronJob,
      runs,
      notReady,
      nextScheduleTime: next,
      // Stable wording (no live counts), so a waiting task's status does not change while it waits.
      queuedMessage: slots && family ? `family ${family} runs ${slots.concurrency} at once` : undefined,
      waitingFor: runningRunOf(task)?.metadata?.name,
      now,
    });
    // The status as it now stands: the echo of a status write does not bring the task back, so
    // what the write made durable (runs counted) is acted on here, not in a reconcile after it.
    let current = task.status;
    try {
      const statusWrite = await expectations.write('task', key, statusBase.metadata.resourceVersion ?? ABSENT, now.getTime(), () => applier.patchStatus(statusBase, statusMembers(status, recorded !== task.status?.lastRun)), (r) => r.object?.metadata?.resourceVersion);
      again ||= statusWrite.again;
      current = statusWrite.result.object?.status ?? task.status;
      for (const run of folded) announceFinished(task, run, family);
    } catch (err) {
      if (causedBy(err, WritesFencedError)) throw err;
      failures.push(err); // nothing folded is announced: the counts were not stored
    }

    // 7. Housekeeping.
    const history = { ...DEFAULT_HISTORY, ...task.spec.history };
    // The newest run, failed in a way that is retried, keeps its Job until a newer run exists (its
    // retry, or the next one): a retry copies its arguments (a run-now's params overrides) from it,
    // whatever history.failedRuns says and however long the retry is held up.
    const retryable = newest.run?.result && RETRYABLE_OUTCOMES.has(newest.run.result.outcome) ? newest.run.id : undefined;
    const chores = planHousekeeping(runs, task.metadata.uid ?? '', history, countedThrough(current), retryable, current?.lastRun, now.getTime());
    for (const run of chores.release) {
      if (run.result && Date.parse(run.result.finishedAt) > countedThrough(current)) {
        log.warn({ task: key, run: run.id, outcome: run.result.outcome }, 'a deleted Job let go uncounted: its run could not be counted in the status');
      }
    }
    const chored = await Promise.allSettled([
      ...chores.release.map((run) => jobs.release(run.job, fieldManager)),
      ...chores.stopPods.map((run) => jobs.remove(run.job, 'Foreground')),
      ...leftoverChores(runsOf(stale, podsOf, undefined)),
      // Runs of a deleted earlier task of this name that never started: nobody will admit them,
      // and a CronJob taken over from that task would count them as active for ever.
      ...stale.filter(neverStarted).map((job) => jobs.remove(job)),
      ...chores.remove.map((run) => jobs.remove(run.job)),
    ]);
    for (const r of chored) {
      if (r.status === 'rejected') {
        if (causedBy(r.reason, WritesFencedError)) throw r.reason;
        failures.push(r.reason);
      }
    }

    // 8. Requeue.
    const moments = [
      next === undefined ? undefined : next + AFTER_SCHEDULE_MS,
      retryDueAt,
      foldAt,
      runs.some((r) => r.queued) ? now.getTime() + QUEUED_RECHECK_MS : undefined,
      // A deleted Job still held: let go by then at the latest (housekeeping.ts).
      ...runs.filter((r) => r.deleting && r.hasFinalizer).map(releaseUncountedAt).filter((t) => t > now.getTime()),
    ].filter((t): t is number => t !== undefined);
    const due = moments.length === 0 ? undefined : Math.min(MAX_REQUEUE_MS, Math.max(MIN_REQUEUE_MS, Math.min(...moments) - now.getTime()));
    // A failure is retried with backoff, but not past a moment that was due anyway.
    if (failures.length > 0) throw new IncompleteReconcileError(failures[0], due);
    if (again) return { requeueAfterMs: 0 };
    return due === undefined ? {} : { requeueAfterMs: due };
  };

  /** A write of step 5 failed: said once as a Warning, and the reconcile fails at its end. */
  function failed(failures: unknown[], task: Task, err: unknown, reason: string, what: string): undefined {
    if (causedBy(err, WritesFencedError)) throw err;
    failures.push(err);
    const message = `${what}: ${describeError((err as Error).cause ?? err)}`;
    if (announced.first(`${reason}/${task.metadata.uid}/${message}`)) events.record(task, 'Warning', reason, message, 'Run');
    return undefined;
  }

  // ------------------------------------------------------------------------------------ steps

  async function admitFamily(family: Family) {
    const concurrency = deps.families()[family].concurrency;
    const outcome = await admission.admit(family, concurrency, mayRun, runsExclusively);
    const fenced = outcome.failed.find((f) => causedBy(f.error, WritesFencedError));
    if (fenced) throw fenced.error;
    outcome.admit.forEach((job, i) => {
      const owner = taskOfJob(job);
      if (owner) events.record(owner, 'Normal', 'RunStarted', `run ${job.metadata?.name} admitted (family ${family}: ${outcome.running + i + 1} of ${concurrency} running)`, 'Admit');
    });
    for (const { job, error } of outcome.failed) {
      const owner = taskOfJob(job);
      const message = `run ${job.metadata?.name} could not be admitted (family ${family}): ${describeError((error as Error).cause ?? error)}`;
      if (!announced.first(`refused/${job.metadata?.uid}/${message}`)) continue; // said already
      log.warn({ job: job.metadata?.name, namespace: job.metadata?.namespace, family, err: describeError(error) }, 'admission refused');
      if (owner) events.record(owner, 'Warning', 'AdmissionFailed', message, 'Admit');
    }
    for (const job of outcome.waiting) {
      const owner = taskOfJob(job);
      if (owner && announced.first(`queued/${job.metadata?.uid}`)) {
        const running = runningRunOf(owner);
        const why = running ? `for run ${running.metadata?.name} of the task to finish (concurrencyPolicy Forbid)` : `for a slot of family ${family} (${outcome.running} of ${concurrency} running)`;
        events.record(owner, 'Normal', 'RunQueued', `run ${job.metadata?.name} waits ${why}`, 'Queue');
      }
    }
    return outcome;
  }

  /**
   * A waiting Job may take a slot unless its task is gone, or suspended (run-now Jobs excepted), or
   * (concurrencyPolicy Forbid) a run of the task in another family is going, or (concurrencyPolicy
   * Replace) a newer run of its task replaces it: it is about to be deleted.
   */
  function mayRun(job: Job): boolean {
    const task = taskOfJob(job);
    if (!task || !mayTakeSlot(job, task)) return false;
    // Admission keeps a Forbid task's runs apart within a family; a run of its other family (the
    // task was moved) is seen here.
    const running = runningRunOf(task);
    if (running && running.metadata?.labels?.[FAMILY_LABEL] !== job.metadata?.labels?.[FAMILY_LABEL]) return false;
    if (task.spec.concurrencyPolicy !== 'Replace') return true;
    return !replacedRuns(task)?.superseded.some((r) => r.uid === job.metadata?.uid);
  }

  /** Of a Replace task's runs (replace.ts), the newest that may go and those it replaces. */
  function replacedRuns(task: Task, runs: readonly Run[] = ownRunsOf(task)) {
    return supersededRuns(runs, (run) => mayTakeSlot(run.job, task));
  }

  function ownRunsOf(task: Task): Run[] {
    return runsOf(ownJobsOf(task), podsOf, recordedLastRun(task));
  }

  /** The task's Jobs, of this incarnation (not those of an earlier task of the same name). */
  function ownJobsOf(task: Task): Job[] {
    return caches.jobs.byIndex(JOBS_BY_TASK, `${task.metadata.namespace}/${task.metadata.name}`).filter((j) => ofIncarnation(j, task));
  }

  /** With concurrencyPolicy Forbid, the run of `task` that its waiting runs wait for, if one is going. */
  function runningRunOf(task: Task): Job | undefined {
    if ((task.spec.concurrencyPolicy ?? 'Forbid') !== 'Forbid') return undefined;
    // One being deleted still runs until its pods are gone, and admission still counts it.
    return ownJobsOf(task).find((j) => (j.spec?.suspend !== true || admission.admittedLately(j.metadata?.uid)) && !isFinished(j));
  }

  /** Runs of a task with concurrencyPolicy Forbid never overlap, its retries and run-now Jobs included. */
  function runsExclusively(job: Job): string | undefined {
    const task = taskOfJob(job);
    return task && (task.spec.concurrencyPolicy ?? 'Forbid') === 'Forbid' ? `${task.metadata.namespace}/${task.metadata.name}` : undefined;
  }

  async function startRunNow(task: Task, validation: Extract<Validation, { ok: true }>, desired: CronJob): Promise<Task | undefined> {
    const plan = planRunNow(task, validation.meta);
    if (plan.kind === 'none') return undefined;
    if (plan.kind === 'invalid') {
      events.record(task, 'Warning', 'InvalidRunNow', `run-now ${JSON.stringify(plan.token)} refused: ${plan.message}`, 'RunNow');
    } else {
      const job = desiredRunJob({ cronJob: desired, task, name: plan.name, trigger: 'Manual', attempt: 1, args: plan.args, annotations: { [RUN_NOW_TOKEN_ANNOTATION]: plan.token, [CREATED_AT_ANNOTATION]: deps.clock().toISOString() } });
      const created = await jobs.create(job, fieldManager);
      if (created) events.record(task, 'Normal', 'RunRequested', `run ${plan.name} created for run-now ${JSON.stringify(plan.token)}`, 'RunNow');
    }
    // The Job exists (or the request is refused): remember the token so it is answered once.
    return tasks.annotate(task, { [RUN_NOW_HANDLED_ANNOTATION]: plan.token }, fieldManager);
  }

  async function startDueRetry(
    task: Task,
    validation: Extract<Validation, { ok: true }>,
    desired: CronJob,
    runs: readonly Run[],
    newest: ReturnType<typeof newestRun>,
    now: number,
  ): Promise<number | undefined> {
    const decision = decideRetry({ task, policy: retryPolicy(task, validation.meta), newest, runs, now });
    if (decision.kind === 'none') return undefined;
    if (decision.kind === 'wait') {
      if (announced.first(`retry/${task.metadata.uid}/${decision.failedRunId}/${decision.attempt}`)) {
        const at = new Date(decision.dueAt).toISOString();
        events.record(task, 'Normal', 'RetryScheduled', `run ${decision.failedRunId} ended ${newest.lastRun?.outcome}: attempt ${decision.attempt} starts at ${at}`, 'Retry');
      }
      return decision.dueAt;
    }
    const job = desiredRunJob({
      cronJob: desired,
      task,
      name: decision.name,
      trigger: 'Retry',
      attempt: decision.attempt,
      ...(decision.args ? { args: decision.args } : {}),
      annotations: { [RETRY_OF_ANNOTATION]: decision.failedRunId, [CREATED_AT_ANNOTATION]: deps.clock().toISOString() },
    });
    const created = await jobs.create(job, fieldManager);
    if (created) events.record(task, 'Normal', 'RetryStarted', `run ${decision.name} retries ${decision.failedRunId} (attempt ${decision.attempt})`, 'Retry');
    return undefined;
  }

  /** concurrencyPolicy Replace (replace.ts): the task's older unfinished runs give way to its newest. */
  async function replaceSuperseded(task: Task, runs: readonly Run[], failures: unknown[]): Promise<void> {
    const replacing = replacedRuns(task, runs);
    if (!replacing) return;
    const { by: newest, superseded } = replacing;
    // In the foreground: the Job, and so its slot, stays until its pods have stopped.
    const removed = await Promise.allSettled(superseded.map((run) => jobs.remove(run.job, 'Foreground')));
    removed.forEach((r, i) => {
      const run = superseded[i]!;
      if (r.status === 'rejected') {
        failed(failures, task, r.reason, 'ReplaceFailed', `stopping run ${run.id} for run ${newest.id} (concurrencyPolicy Replace) failed`);
      } else if (announced.first(`replaced/${run.uid}`)) {
        const what = run.admitted ? 'stopped' : 'dropped before it started';
        events.record(task, 'Normal', 'RunReplaced', `run ${run.id} ${what}: run ${newest.id} replaces it (concurrencyPolicy Replace)`, 'Replace');
      }
    });
  }

  function announceFinished(task: Task, run: Run, family: Family | undefined): void {
    if (!run.result || !announced.first(`finished/${run.uid}`)) return;
    const { outcome, message } = run.result;
    const duration = run.startedAt ? Math.max(0, (Date.parse(run.result.finishedAt) - Date.parse(run.startedAt)) / 1000) : undefined;
    deps.metrics.observeRun({ task: task.spec.task, family: family ?? 'unknown', outcome, ...(duration === undefined ? {} : { durationSeconds: duration }) });
    if (outcome === 'Succeeded') events.record(task, 'Normal', 'RunSucceeded', `run ${run.id} (attempt ${run.attempt}) succeeded: ${message}`, 'Run');
    else if (outcome === 'Cancelled') events.record(task, 'Normal', 'RunCancelled', `run ${run.id} (attempt ${run.attempt}) cancelled: ${message}`, 'Run');
    else events.record(task, 'Warning', 'RunFailed', `run ${run.id} (attempt ${run.attempt}) ended ${outcome}: ${message}`, 'Run');
  }

  /**
   * The finalizers on Jobs of a task that is gone (or of an earlier task of the name): lifted once
   * their pods have stopped, the pods of those being deleted stopped first (housekeeping.ts).
   * Whether the run was counted no longer matters.
   */
  function leftoverChores(runs: readonly Run[]): Promise<void>[] {
    return [
      ...runs.filter((r) => r.hasFinalizer && !r.podsLive).map((r) => jobs.release(r.job, fieldManager)),
      ...planDeletions(runs, Number.POSITIVE_INFINITY).stopPods.map((r) => jobs.remove(r.job, 'Foreground')),
    ];
  }

  // ---------------------------------------------------------------------------------- lookups

  function podsOf(job: Job): Pod[] {
    return caches.pods.byIndex(PODS_BY_JOB, `${job.metadata?.namespace}/${job.metadata?.name}`);
  }

  /** The task a Job is a run of: by its label, and of this incarnation (not one deleted and made again). */
  function taskOfJob(job: Job): Task | undefined {
    const taskName = job.metadata?.labels?.[TASK_NAME_LABEL];
    const namespace = job.metadata?.namespace;
    const task = taskName && namespace ? caches.tasks.get(namespace, taskName) : undefined;
    return task && ofIncarnation(job, task) ? task : undefined;
  }
}

/** Whether the stored status already reports this problem: an Event is for the news, not for every reconcile. */
function alreadySaid(task: Task, notReady: NotReady): boolean {
  const ready = task.status?.conditions?.find((c) => c.type === CONDITION_READY);
  return ready?.status === 'False' && ready.reason === notReady.reason && ready.message === notReady.message;
}

/** The schedule of a CronJob applied earlier (kept while the task's spec is invalid), if it compiles. */
function keptSchedule(cronJob: CronJob | undefined): ReturnType<typeof compileSchedule> | undefined {
  const schedule = cronJob?.spec?.schedule;
  if (!schedule) return undefined;
  try {
    return compileSchedule(schedule, cronJob.spec?.timeZone);
  } catch {
    return undefined; // not one this operator wrote: no next time to promise
  }
}

function neverStarted(job: Job): boolean {
  return job.spec?.suspend === true && !isFinished(job) && !job.metadata?.deletionTimestamp;
}

function familyOf(task: Task): Family | undefined {
  const prefix = task.spec.task.slice(0, task.spec.task.indexOf('.'));
  return (FAMILIES as readonly string[]).includes(prefix) ? (prefix as Family) : undefined;
}

function familiesOf(jobs: readonly Job[]): Family[] {
  const families = new Set<Family>();
  for (const job of jobs) {
    const family = job.metadata?.labels?.[FAMILY_LABEL];
    if (family && (FAMILIES as readonly string[]).includes(family)) families.add(family as Family);
  }
  return [...families];
}

/**
 * A task deleted and created again under the same name gets new Jobs while the old ones are
 * still being collected: those owned by another task uid, or (made by a CronJob) created before
 * this task was, belong to the old one.
 */
function partitionByIncarnation(jobs: readonly Job[], task: Task): { own: Job[]; stale: Job[] } {
  const own: Job[] = [];
  const stale: Job[] = [];
  for (const job of jobs) (ofIncarnation(job, task) ? own : stale).push(job);
  return { own, stale };
}

function ofIncarnation(job: Job, task: Task): boolean {
  const taskOwner = job.metadata?.ownerReferences?.find((o) => o.kind === TASK_KIND);
  if (taskOwner) return taskOwner.uid === task.metadata.uid;
  return !(Date.parse(job.metadata?.creationTimestamp ?? '') < Date.parse(task.metadata.creationTimestamp ?? ''));
}

/** Where the CronJob controller counts schedules from: its last schedule, else its creation, else now. */
function earliestSchedule(cronJob: CronJob | undefined, now: Date): number {
  const at = cronJob?.status?.lastScheduleTime ?? cronJob?.metadata?.creationTimestamp;
  return at ? Date.parse(at) : now.getTime();
}

/**
 * The status members the operator owns, each named even when unset (so a value that went away is
 * removed). lastRun is named only when known: the runner writes it too, and an operator that has
 * not seen a run yet must not erase the runner's report — unless that report is of an earlier task
 * of the same name.
 */
function statusMembers(status: ReturnType<typeof buildStatus>['status'], foreignLastRun: boolean): Record<string, unknown> {
  const members: Record<string, unknown> = {
    observedGeneration: status.observedGeneration,
    conditions: status.conditions,
    family: status.family,
    cronJobName: status.cronJobName,
    lastScheduleTime: status.lastScheduleTime,
    nextScheduleTime: status.nextScheduleTime,
    lastSuccessfulTime: status.lastSuccessfulTime,
    lastFailureTime: status.lastFailureTime,
    lastCancellationTime: status.lastCancellationTime,
    active: status.active,
    succeeded: status.succeeded,
    failed: status.failed,
    cancelled: status.cancelled,
    consecutiveFailures: status.consecutiveFailures,
  };
  if (status.lastRun) members.lastRun = status.lastRun;
  else if (foreignLastRun) members.lastRun = undefined; // an earlier task's run (recordedLastRun): not this task's news
  return members;
}
