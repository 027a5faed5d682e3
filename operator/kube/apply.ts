// Writes that cost nothing when nothing changed.
//   apply(): makes the live object match a desired one (field manager bgtask-operator): a POST
//     when there is none, else server-side apply with force (see field-ownership.ts for why the
//     create is a POST). The hash of the desired object rides along in an annotation; when the
//     cached live object carries the same hash, the request is skipped. A spec edited by someone
//     else bumps the object's generation past the one our last apply produced, and that re-applies.
//     With no memory of an apply (a restarted operator, a new leader), the cached spec is compared
//     with the desired one (what the cache holds of it), and the job template it drops counts as
//     edited when another manager wrote it after the operator's last write; if neither, its
//     generation becomes the baseline for later edits. An apply the server found nothing to change
//     in (same resourceVersion) reports changed: false.
//   patchStatus(): a JSON merge patch of /status holding only the members that differ from the
//     cached object; nothing to send, no request.
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { HttpMethod, PatchStrategy } from '@kubernetes/client-node';
import { API_GROUP } from '../../crds/schema.ts';
import { StaleObjectError, isConflict } from './errors.ts';
import { ownsByUpdate, templateEditedByOthers, upgradedManagedFields, type ManagedFieldsEntry } from './field-ownership.ts';
import { objectKey } from './keys.ts';
import { hashJson, partialMergePatch } from './json.ts';
import type { RawApi } from './raw-api.ts';
import { BACKGROUND_TASKS, collectionPath, objectPath, resourceFor, type ResourceType } from './resources.ts';
import type { KubeObject } from './types.ts';

export const FIELD_MANAGER = 'bgtask-operator';
export const APPLIED_HASH_ANNOTATION = `${API_GROUP}/applied-hash`;
/** The CronJob spec fields the operator's cache leaves out (slimCronJob in transforms.ts). */
export const UNCACHED_CRONJOB_SPEC_FIELDS: readonly string[] = ['jobTemplate'];

export interface ApplyResult<T> {
  /** false when the live object already matched (no request was made, or the server changed nothing). */
  changed: boolean;
  /** The server's answer, or the live object when skipped. */
  object: T;
}

export interface StatusPatchResult<T> {
  changed: boolean;
  /** The updated object; undefined when skipped. */
  object?: T;
}

export interface ApplierOptions {
  raw: RawApi;
  log: Logger;
  fieldManager?: string;
  /** How many objects' last applied generation to remember (oldest forgotten first). */
  rememberGenerations?: number;
}

export interface ApplierStats {
  /** Objects created (by POST). */
  creates: number;
  /** Server-side applies to existing objects. */
  applies: number;
  /** Objects whose POST-created fields were handed to the apply entry before their first apply. */
  ownershipUpgrades: number;
  appliesSkipped: number;
  statusPatches: number;
  statusPatchesSkipped: number;
}

/** The desired object's hash, as stored in APPLIED_HASH_ANNOTATION (the annotation itself excluded). */
export function desiredHash(desired: KubeObject): string {
  const annotations = { ...desired.metadata?.annotations };
  delete annotations[APPLIED_HASH_ANNOTATION];
  return hashJson({ ...desired, metadata: { ...desired.metadata, annotations } });
}

export class Applier {
  readonly fieldManager: string;
  readonly stats: ApplierStats = { creates: 0, applies: 0, ownershipUpgrades: 0, appliesSkipped: 0, statusPatches: 0, statusPatchesSkipped: 0 };
  /** `kind/namespace/name` → the uid and generation our last apply left the object at. */
  private readonly applied = new Map<string, { uid: string; generation: number }>();

  constructor(private readonly opts: ApplierOptions) {
    this.fieldManager = opts.fieldManager ?? FIELD_MANAGER;
  }

  /**
   * Creates `desired` when there is no `live` (the cached object), else server-side applies it,
   * unless `live` already carries its hash and nobody has changed its spec since. `hash` is
   * desiredHash(desired), when the caller has it already.
   */
  async apply<T extends KubeObject>(desired: T, live?: KubeObject, hash = desiredHash(desired)): Promise<ApplyResult<T>> {
    const rt = resourceFor(desired.apiVersion, desired.kind);
    const name = desired.metadata?.name;
    if (!name) throw new Error(`apply: desired ${desired.kind} has no metadata.name`);
    const memoKey = `${desired.kind}/${objectKey(desired)}`;
    if (live && live.metadata?.annotations?.[APPLIED_HASH_ANNOTATION] === hash && !this.editedSince(memoKey, live, desired)) {
      this.stats.appliesSkipped++;
      return { changed: false, object: live as T };
    }
    const body = { ...desired, metadata: { ...desired.metadata, annotations: { ...desired.metadata?.annotations, [APPLIED_HASH_ANNOTATION]: hash } } };
    const namespace = desired.metadata?.namespace;
    // Not in the cache: create it. Already there after all (the cache lags, or it is someone
    // else's object without our labels): apply, which takes it over.
    let result = live ? undefined : await this.create<T>(rt, body);
    if (result) this.stats.creates++;
    else {
      if (!live || ownsByUpdate(live, this.fieldManager)) await this.upgradeOwnership(rt, desired);
      try {
        result = await this.opts.raw.request<T>(HttpMethod.PATCH, objectPath(rt, namespace, name), {
          query: { fieldManager: this.fieldManager, force: true },
          body,
          contentType: PatchStrategy.ServerSideApply,
        });
      } catch (err) {
        throw new Error(`server-side apply of ${rt.kind} ${objectKey(desired)} failed`, { cause: err });
      }
      this.stats.applies++;
    }
    this.remember(memoKey, result);
    this.opts.log.debug({ kind: rt.kind, key: objectKey(desired), resourceVersion: result.metadata?.resourceVersion }, 'applied');
    // An apply that changed nothing (a field someone else added, still theirs) leaves the resourceVersion.
    const changed = !live || result.metadata?.resourceVersion !== live.metadata?.resourceVersion;
    return { changed, object: result };
  }

  /**
   * Merge-patches the status subresource of a BackgroundTask with the members of `status` that
   * differ from `task.status` (the cached object). Members not named in `status` are left alone
   * (the task-runner owns lastRun); a member set to undefined is removed. The patch carries the
   * cached resourceVersion: a status computed from a stale copy (counters folded on an old base)
   * is refused with a StaleObjectError instead of overwriting a newer one.
   */
  async patchStatus<T extends KubeObject & { status?: object }>(task: T, status: Record<string, unknown>): Promise<StatusPatchResult<T>> {
    const patch = partialMergePatch(task.status as Record<string, unknown> | undefined, status);
    if (!patch) {
      this.stats.statusPatchesSkipped++;
      return { changed: false };
    }
    const name = task.metadata?.name;
    if (!name) throw new Error('patchStatus: the task has no metadata.name');
    let object: T;
    try {
      object = await this.opts.raw.request<T>(HttpMethod.PATCH, objectPath(BACKGROUND_TASKS, task.metadata?.namespace, name, 'status'), {
        query: { fieldManager: this.fieldManager },
        body: { metadata: { resourceVersion: task.metadata?.resourceVersion }, status: patch },
        contentType: PatchStrategy.MergePatch,
      });
    } catch (err) {
      if (isConflict(err)) throw new StaleObjectError(`the status of ${objectKey(task)} changed since resourceVersion ${task.metadata?.resourceVersion}, which this one was computed from`, { cause: err });
      throw new Error(`status patch of ${objectKey(task)} failed`, { cause: err });
    }
    this.stats.statusPatches++;
    return { changed: true, object };
  }

  /** POSTs the object; undefined when one of that name exists already. */
  private async create<T>(rt: ResourceType, body: KubeObject): Promise<T | undefined> {
    try {
      return await this.opts.raw.request<T>(HttpMethod.POST, collectionPath(rt, body.metadata?.namespace), { query: { fieldManager: this.fieldManager }, body });
    } catch (err) {
      if (isConflict(err)) return undefined;
      throw new Error(`creating ${rt.kind} ${objectKey(body)} failed`, { cause: err });
    }
  }

  /**
   * Hands the fields our POST created (an `Update` entry of our field manager) to our `Apply`
   * entry, so the apply that follows can remove what it no longer wants. Reads the object for its
   * full managedFields; the patch fails (and the reconcile is retried) if the object changed since.
   */
  private async upgradeOwnership(rt: ResourceType, desired: KubeObject): Promise<void> {
    const path = objectPath(rt, desired.metadata?.namespace, desired.metadata?.name ?? '');
    const where = `${rt.kind} ${objectKey(desired)}`;
    let current: KubeObject & { metadata?: { managedFields?: ManagedFieldsEntry[] } };
    try {
      current = await this.opts.raw.request(HttpMethod.GET, path);
    } catch (err) {
      throw new Error(`reading ${where} to take over its fields failed`, { cause: err });
    }
    const managedFields = upgradedManagedFields(current.metadata?.managedFields ?? [], this.fieldManager);
    if (!managedFields) return;
    try {
      await this.opts.raw.request(HttpMethod.PATCH, path, {
        query: { fieldManager: this.fieldManager },
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: current.metadata?.resourceVersion },
          { op: 'replace', path: '/metadata/managedFields', value: managedFields },
        ],
        contentType: PatchStrategy.JsonPatch,
      });
    } catch (err) {
      throw new Error(`handing the fields of ${where} from our Update entry to our Apply entry failed`, { cause: err });
    }
    this.stats.ownershipUpgrades++;
    this.opts.log.debug({ kind: rt.kind, key: objectKey(desired) }, 'field ownership moved from Update to Apply');
  }

  // The cached object may lag behind our own last apply (lower generation): that is not an edit.
  // With no memory of an apply, a live spec that matches, and whose template nobody else wrote
  // since our last write, becomes the baseline (remembered here).
  private editedSince(memoKey: string, live: KubeObject, desired: KubeObject): boolean {
    const last = this.applied.get(memoKey);
    if (last && last.uid === live.metadata?.uid) return (live.metadata?.generation ?? 0) > last.generation;
    if (!specMatches(live, desired) || templateEditedByOthers(live, this.fieldManager)) return true;
    this.remember(memoKey, live);
    return false;
  }

  private remember(memoKey: string, result: KubeObject): void {
    const uid = result.metadata?.uid;
    const generation = result.metadata?.generation;
    if (!uid || generation === undefined) return;
    this.applied.delete(memoKey); // re-insert: Map order is the eviction order
    this.applied.set(memoKey, { uid, generation });
    const cap = this.opts.rememberGenerations ?? 20_000;
    if (this.applied.size > cap) this.applied.delete(this.applied.keys().next().value as string);
  }
}

/**
 * Whether every field the desired spec sets (an undefined one is not sent, so not owned) and the
 * cache keeps is the same in the live spec.
 */
function specMatches(live: KubeObject, desired: KubeObject): boolean {
  const want = (desired as { spec?: Record<string, unknown> }).spec ?? {};
  const have = (live as { spec?: Record<string, unknown> }).spec ?? {};
  return Object.entries(want).every(([field, value]) => value === undefined || UNCACHED_CRONJOB_SPEC_FIELDS.includes(field) || isDeepStrictEqual(have[field], value));
}
