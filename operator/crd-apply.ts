// `operator crd apply`: makes the cluster serve the BackgroundTask CRD this build was made with.
// Helm installs a chart's crds/ with the first install and never upgrades them; the chart runs
// this as a pre-upgrade and pre-rollback hook, so the operator that follows never meets an older
// schema (crd-check.ts is what notices when it does). A server-side apply with force: the CRD's
// versions list is atomic, so the applied one replaces whatever an older chart's CRD had there,
// while labels and annotations others put on the CRD stay theirs.
import { HttpMethod, PatchStrategy } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CRD_NAME, SCHEMA_HASH_ANNOTATION, customResourceDefinition } from '../crds/definition.ts';
import { FIELD_MANAGER } from './kube/apply.ts';
import { servedSchemaHash } from './crd-check.ts';
import { describeError, statusCode } from './kube/errors.ts';
import type { RawApi } from './kube/raw-api.ts';
import { CUSTOM_RESOURCE_DEFINITIONS, objectPath } from './kube/resources.ts';
import { sleep } from './kube/sleep.ts';

interface Condition {
  type: string;
  status: string;
  message?: string;
}

interface Crd {
  metadata: { name: string; annotations?: Record<string, string> };
  status?: { conditions?: Condition[] };
}

export interface CrdApplyResult {
  /** unchanged: the served CRD already carried this build's schema hash; no write was made. */
  action: 'created' | 'updated' | 'unchanged';
  hash: string;
  /** The served CRD's schema hash before ('none' when it had no annotation). */
  previous?: string;
}

export interface CrdApplyOptions {
  raw: RawApi;
  log: Logger;
  /** How long to wait for the CRD to be Established after the write. */
  establishedTimeoutMs?: number;
}

export async function applyCrd(opts: CrdApplyOptions): Promise<CrdApplyResult> {
  const desired = customResourceDefinition() as unknown as Crd;
  const hash = desired.metadata.annotations![SCHEMA_HASH_ANNOTATION]!;
  const path = objectPath(CUSTOM_RESOURCE_DEFINITIONS, undefined, CRD_NAME);
  let previous: string | undefined;
  try {
    previous = await servedSchemaHash(opts.raw);
  } catch (err) {
    throw new Error(`reading customresourcedefinitions/${CRD_NAME} failed: ${explain(err)}`, { cause: err });
  }
  if (previous === hash) {
    opts.log.info({ crd: CRD_NAME, hash }, 'the served CRD is already this build\'s: nothing to do');
    return { action: 'unchanged', hash, previous };
  }
  const action = previous ? 'updated' : 'created';
  try {
    await opts.raw.request(HttpMethod.PATCH, path, {
      body: desired,
      contentType: PatchStrategy.ServerSideApply,
      query: { fieldManager: FIELD_MANAGER, force: true },
    });
  } catch (err) {
    throw new Error(`${previous ? 'updating' : 'creating'} customresourcedefinitions/${CRD_NAME} failed: ${explain(err)}`, { cause: err });
  }
  await waitEstablished(opts, path);
  opts.log.info({ crd: CRD_NAME, action, previous: previous ?? null, hash }, `the CRD is ${action} to this build's schema and Established`);
  return previous ? { action, hash, previous } : { action, hash };
}

async function waitEstablished(opts: CrdApplyOptions, path: string): Promise<void> {
  const timeoutMs = opts.establishedTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let conditions: Condition[] = [];
  for (;;) {
    const crd = await opts.raw.request<Crd>(HttpMethod.GET, path);
    conditions = crd.status?.conditions ?? [];
    const isTrue = (type: string) => conditions.some((c) => c.type === type && c.status === 'True');
    if (isTrue('Established') && isTrue('NamesAccepted')) return;
    if (Date.now() >= deadline) break;
    await sleep(500);
  }
  const state = conditions.map((c) => `${c.type}=${c.status}${c.message ? ` (${c.message})` : ''}`).join(', ') || 'no conditions';
  throw new Error(`customresourcedefinitions/${CRD_NAME} was written but is not Established after ${timeoutMs / 1000} s: ${state}`);
}

function explain(err: unknown): string {
  if (statusCode(err) !== 403) return describeError(err);
  return `${describeError(err)} (the chart's crds.upgradeJob may get and patch this one CRD; creating it is left to helm install)`;
}
