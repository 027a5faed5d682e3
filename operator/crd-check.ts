// Whether the cluster serves the BackgroundTask CRD this operator was built with. Helm installs a
// chart's crds/ with the first install and never upgrades them, so after `helm upgrade` the new
// operator may run against an older schema: the apiserver then prunes the status fields that
// schema lacks and refuses the spec fields users set. The generated CRD carries the hash of its
// spec (crds/definition.ts); the operator compares it with its own, at start and then every
// interval (applying the new CRD clears the state without a restart), reports it as the gauge
// bgtask_crd_schema_state (the chart alerts on it), and logs each change of state.
import { HttpMethod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CRD_NAME, SCHEMA_HASH_ANNOTATION } from '../crds/definition.ts';
import { describeError, isNotFound, statusCode } from './kube/errors.ts';
import type { RawApi } from './kube/raw-api.ts';
import { CUSTOM_RESOURCE_DEFINITIONS, objectPath } from './kube/resources.ts';
import { sleep } from './kube/sleep.ts';

export type CrdState =
  | { state: 'current'; hash: string }
  | { state: 'outdated'; hash: string; served: string }
  | { state: 'unknown'; reason: string };

/**
 * The schema hash of the CRD the cluster serves: 'none' when it has no annotation (applied before
 * the annotation existed: older than any build that checks), undefined when there is no CRD.
 * Other failures throw. crd-apply.ts reads it too.
 */
export async function servedSchemaHash(raw: RawApi, signal?: AbortSignal): Promise<string | undefined> {
  try {
    const crd = await raw.request<{ metadata?: { annotations?: Record<string, string> } }>(HttpMethod.GET, objectPath(CUSTOM_RESOURCE_DEFINITIONS, undefined, CRD_NAME), signal ? { signal } : {});
    return crd.metadata?.annotations?.[SCHEMA_HASH_ANNOTATION] ?? 'none';
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Reads the served CRD's schema hash and compares it with `expected` (crdSchemaHash()). */
export async function checkCrd(raw: RawApi, expected: string, signal?: AbortSignal): Promise<CrdState> {
  let served: string | undefined;
  try {
    served = await servedSchemaHash(raw, signal);
  } catch (err) {
    const reason =
      statusCode(err) === 403
        ? `not allowed to read customresourcedefinitions/${CRD_NAME} (the chart grants it unless operator.crdCheck.enabled is false): ${describeError(err)}`
        : describeError(err);
    return { state: 'unknown', reason };
  }
  if (served === undefined) return { state: 'unknown', reason: `customresourcedefinitions/${CRD_NAME} does not exist` };
  if (served === expected) return { state: 'current', hash: expected };
  return { state: 'outdated', hash: expected, served };
}

export interface CrdWatchOptions {
  raw: RawApi;
  log: Logger;
  expected: string;
  intervalMs: number;
  onState: (state: CrdState) => void;
  signal: AbortSignal;
}

/** Checks at once and then every intervalMs until the signal aborts; logs when the state changes. */
export async function watchCrd(opts: CrdWatchOptions): Promise<void> {
  let last: CrdState['state'] | undefined;
  while (!opts.signal.aborted) {
    const result = await checkCrd(opts.raw, opts.expected, opts.signal);
    if (opts.signal.aborted) return;
    opts.onState(result);
    if (result.state !== last) {
      if (result.state === 'current') opts.log.info({ crd: CRD_NAME, hash: result.hash }, 'the served CRD is the one this operator was built with');
      else if (result.state === 'outdated') {
        opts.log.warn(
          { crd: CRD_NAME, served: result.served, expected: result.hash },
          'the served CRD is not the one this operator was built with: fields it lacks are pruned from status and refused in spec; ' +
            'apply this build\'s CRD: `helm upgrade` does with crds.upgradeJob.enabled, or `operator crd apply`, or `kubectl apply --server-side -f` the chart\'s crds/',
        );
      } else opts.log.warn({ crd: CRD_NAME, reason: result.reason }, 'could not check the served CRD');
      last = result.state;
    }
    await sleep(opts.intervalMs, opts.signal);
  }
}
