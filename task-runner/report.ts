/**
 * Delivers a run's result: the termination message file first (it survives a failed API
 * call and the kubelet copies it into the pod's status), then a JSON merge patch of
 * `status.lastRun` on the BackgroundTask's status subresource, as field manager
 * `bgtask-runner`. Outside a cluster, with no override, no API is contacted.
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { API_GROUP, API_VERSION, PLURAL } from '../crds/constants.ts';
import type { LastRun } from '../crds/schema.ts';
import { describeError } from './errors.ts';
import type { KubeApiError, KubeClient } from './kube-api.ts';
import { kubeEndpoint, serviceAccountNamespace, type KubeEndpoint, type KubeSettings } from './kube-endpoint.ts';

export const FIELD_MANAGER = 'bgtask-runner';
const DEFAULT_TERMINATION_LOG = '/dev/termination-log';
/** The kubelet keeps at most 4096 bytes of a termination message. */
export const TERMINATION_MESSAGE_LIMIT = 4096;

/** The result as one JSON line that fits the kubelet's limit: the message, then the summary, give way first. */
export function terminationMessage(run: LastRun): string {
  const fits = (r: LastRun) => Buffer.byteLength(JSON.stringify(r)) <= TERMINATION_MESSAGE_LIMIT;
  if (fits(run)) return JSON.stringify(run);
  const withoutMessage = { ...run, message: '' };
  const room = TERMINATION_MESSAGE_LIMIT - Buffer.byteLength(JSON.stringify(withoutMessage)) - 64;
  if (room > 0) {
    const shortened = { ...run, message: `${truncateUtf8(run.message ?? '', room)} [truncated]` };
    if (fits(shortened)) return JSON.stringify(shortened);
  }
  const bare = { ...run, summary: {}, message: `${truncateUtf8(run.message ?? '', 1024)} [summary dropped: too large]` };
  return JSON.stringify(bare);
}

function truncateUtf8(text: string, maxBytes: number): string {
  let out = text;
  // JSON escaping can grow a string; shrink until the encoded form fits.
  while (out.length > 0 && Buffer.byteLength(JSON.stringify(out)) > maxBytes) out = out.slice(0, Math.floor(out.length * 0.9));
  return out;
}

/** The termination-message path: the override, or the kubelet's file when it exists (never created on a host). */
export function terminationLogPath(settings: { BGTASK_TERMINATION_LOG?: string | undefined }): string | undefined {
  if (settings.BGTASK_TERMINATION_LOG) return settings.BGTASK_TERMINATION_LOG;
  return existsSync(DEFAULT_TERMINATION_LOG) ? DEFAULT_TERMINATION_LOG : undefined;
}

interface CurrentTask {
  metadata?: { resourceVersion?: string };
  status?: { lastRun?: Partial<LastRun> | null } | null;
}

export type StatusPatchPlan = { kind: 'patch'; body: unknown } | { kind: 'stale'; reason: string };

/**
 * Decides the status patch for `run` against the BackgroundTask as last read.
 * - A lastRun from a newer run (later startTime; a tie broken by runId) is never overwritten, nor
 *   this run's own once the operator has said it was Cancelled.
 * - `metadata.resourceVersion` in the patch makes it conditional: a concurrent write yields 409.
 * - A merge patch merges objects, so keys of the previous lastRun (and its summary) that this
 *   run does not have are set to null — the result is exactly this run's lastRun.
 */
export function planStatusPatch(current: CurrentTask, run: LastRun): StatusPatchPlan {
  const resourceVersion = current.metadata?.resourceVersion;
  if (!resourceVersion) throw new Error('the BackgroundTask as read has no metadata.resourceVersion');
  const previous = current.status?.lastRun ?? undefined;
  // The operator's verdict on this very run: its Job was deleted before it finished. A late report
  // (a pod orphaned by the deletion ran on) would make a cancelled run look failed, and be retried.
  if (previous?.runId === run.runId && previous.outcome === 'Cancelled') {
    return { kind: 'stale', reason: `run ${run.runId} was cancelled (its Job deleted) before this report` };
  }
  if (previous && isNewerRun(previous, run)) {
    return { kind: 'stale', reason: `status.lastRun holds run ${previous.runId} started ${previous.startTime}, newer than this run` };
  }
  const lastRun: Record<string, unknown> = { ...run, summary: nullOutMissing(previous?.summary, run.summary ?? {}) };
  for (const key of Object.keys(previous ?? {})) if (!(key in lastRun)) lastRun[key] = null;
  return { kind: 'patch', body: { metadata: { resourceVersion }, status: { lastRun } } };
}

function isNewerRun(previous: Partial<LastRun>, run: LastRun): boolean {
  if (!previous.runId || previous.runId === run.runId) return false;
  const theirs = Date.parse(previous.startTime ?? '');
  const ours = Date.parse(run.startTime);
  if (Number.isNaN(theirs)) return false;
  return theirs !== ours ? theirs > ours : previous.runId > run.runId;
}

function nullOutMissing(previous: unknown, next: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...next };
  if (previous && typeof previous === 'object') for (const key of Object.keys(previous)) if (!(key in out)) out[key] = null;
  return out;
}

export function statusPath(namespace: string, name: string): string {
  return `/apis/${API_GROUP}/${API_VERSION}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}/${encodeURIComponent(name)}/status`;
}

const MAX_CONFLICTS = 5;
const MAX_TRANSIENT_RETRIES = 2;

/**
 * GET, plan, PATCH; on 409 (someone wrote in between) read again and re-decide. `read`, when
 * given, is the object as read earlier and stands in for the first GET.
 */
export async function patchLastRun(
  client: KubeClient,
  ref: { namespace: string; name: string },
  run: LastRun,
  read?: unknown,
): Promise<{ kind: 'patched' } | { kind: 'stale'; reason: string }> {
  const path = statusPath(ref.namespace, ref.name);
  for (let attempt = 1; ; attempt++) {
    const current = (attempt === 1 && read !== undefined ? read : await withTransientRetries(() => client.request('GET', path))) as CurrentTask;
    const plan = planStatusPatch(current, run);
    if (plan.kind === 'stale') return plan;
    try {
      await withTransientRetries(() =>
        client.request('PATCH', `${path}?fieldManager=${FIELD_MANAGER}`, { contentType: 'application/merge-patch+json', value: plan.body }),
      );
      return { kind: 'patched' };
    } catch (err) {
      if ((err as KubeApiError).status === 409 && attempt < MAX_CONFLICTS) continue;
      throw err;
    }
  }
}

async function withTransientRetries<T>(call: () => Promise<T>): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await call();
    } catch (err) {
      if (!(err as KubeApiError).transient || retry >= MAX_TRANSIENT_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, 250 * 2 ** retry));
    }
  }
}

export interface ReportSettings extends KubeSettings {
  BGTASK_NAME?: string | undefined;
  BGTASK_NAMESPACE?: string | undefined;
  BGTASK_TERMINATION_LOG?: string | undefined;
}

export interface Reporter {
  /**
   * Writes the termination message and patches the status. Neither failure changes the run's
   * outcome or exit code: both are logged as errors, and the termination message (or the log)
   * still carries the result.
   */
  deliver(run: LastRun, log: Logger): Promise<void>;
}

type Target = { ref: { namespace: string; name: string }; endpoint: KubeEndpoint } | { skip: string; level: 'debug' | 'warn' };

/**
 * Starts a run's report. When there is a BackgroundTask to report to, its connection (TLS
 * handshake included) and its first GET start now, while the task runs, so that the end of the
 * run costs one PATCH; if the object changed in between, the PATCH gets 409 and the report reads
 * again. `settings` is undefined when the configuration is invalid: the termination message is
 * still written, and no API is contacted.
 */
export function startReport(settings: ReportSettings | undefined): Reporter {
  const target = reportTarget(settings);
  const early =
    'ref' in target
      ? (async () => {
          const { kubeClient } = await import('./kube-api.ts');
          const client = kubeClient(target.endpoint, { timeoutMs: 5000 });
          // A failed early read is no failure yet: delivery reads again, and reports that error if it persists.
          const read = await client.request('GET', statusPath(target.ref.namespace, target.ref.name)).catch(() => undefined);
          return { client, read };
        })()
      : undefined;
  // A failure to create the client is reported by deliver(); until then it must not count as unhandled.
  early?.catch(() => undefined);
  return {
    async deliver(run, log) {
      const file = terminationLogPath(settings ?? {});
      let inTerminationMessage = false;
      if (file) {
        try {
          writeFileSync(file, terminationMessage(run));
          inTerminationMessage = true;
        } catch (err) {
          log.error({ err, file }, `could not write the termination message: ${describeError(err)}`);
        }
      }
      if ('skip' in target) {
        log[target.level](`status not reported: ${target.skip}`);
        return;
      }
      let client: KubeClient | undefined;
      try {
        const started = await early!;
        client = started.client;
        const result = await patchLastRun(client, target.ref, run, started.read);
        if (result.kind === 'stale') log.info({ reason: result.reason }, `status.lastRun not updated: ${result.reason}`);
        else log.debug({ ...target.ref }, 'status.lastRun reported');
      } catch (err) {
        // The operator reads the termination message too: the result still reaches the status.
        const fallback = inTerminationMessage ? ' (the result is in the termination message, which the operator reads)' : '';
        log.error({ err }, `status report failed: ${describeError(err)}${fallback}`);
      } finally {
        client?.close();
      }
    },
  };
}

/** The BackgroundTask this run reports to and the API that holds it, or why there is none. */
function reportTarget(settings: ReportSettings | undefined): Target {
  if (!settings) return { skip: 'the configuration is invalid', level: 'warn' };
  const endpoint = kubeEndpoint(settings);
  if (!endpoint) return { skip: 'not in a cluster and no BGTASK_KUBE_API', level: 'debug' };
  const name = settings.BGTASK_NAME;
  if (!name) return { skip: 'BGTASK_NAME is not set: there is no BackgroundTask to report to', level: 'warn' };
  const namespace = settings.BGTASK_NAMESPACE ?? serviceAccountNamespace(endpoint);
  if (!namespace) return { skip: 'BGTASK_NAMESPACE is not set and no service-account namespace is mounted', level: 'warn' };
  return { ref: { namespace, name }, endpoint };
}
