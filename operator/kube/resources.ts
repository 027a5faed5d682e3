// The resources the operator reads and writes, and how their REST paths are built. A static
// table instead of discovery: the operator knows its kinds, and discovery would add requests
// (and a failure mode) to every start.
import { API_GROUP, API_VERSION, PLURAL as TASK_PLURAL, KIND as TASK_KIND } from '../../crds/schema.ts';

export interface ResourceType {
  /** '' for the core group. */
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export const BACKGROUND_TASKS: ResourceType = { group: API_GROUP, version: API_VERSION, kind: TASK_KIND, plural: TASK_PLURAL, namespaced: true };
export const CRON_JOBS: ResourceType = { group: 'batch', version: 'v1', kind: 'CronJob', plural: 'cronjobs', namespaced: true };
export const JOBS: ResourceType = { group: 'batch', version: 'v1', kind: 'Job', plural: 'jobs', namespaced: true };
export const PODS: ResourceType = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
export const CONFIG_MAPS: ResourceType = { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true };
export const LEASES: ResourceType = { group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases', namespaced: true };
export const EVENTS: ResourceType = { group: 'events.k8s.io', version: 'v1', kind: 'Event', plural: 'events', namespaced: true };
/** By name only: the BackgroundTask CRD, read (crd-check.ts) and applied (crd-apply.ts). */
export const CUSTOM_RESOURCE_DEFINITIONS: ResourceType = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  namespaced: false,
};

const KNOWN = [BACKGROUND_TASKS, CRON_JOBS, JOBS, PODS, CONFIG_MAPS, LEASES, EVENTS];

export function apiVersionOf(rt: ResourceType): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

/** The resource of an object's apiVersion and kind; throws for kinds the operator does not handle. */
export function resourceFor(apiVersion: string | undefined, kind: string | undefined): ResourceType {
  const rt = KNOWN.find((r) => apiVersionOf(r) === apiVersion && r.kind === kind);
  if (!rt) throw new Error(`no resource known for apiVersion ${apiVersion} kind ${kind}`);
  return rt;
}

function groupPrefix(rt: ResourceType): string {
  return rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
}

/** The collection path: one namespace, or every namespace when namespace is undefined. */
export function collectionPath(rt: ResourceType, namespace?: string): string {
  if (rt.namespaced && namespace !== undefined) {
    return `${groupPrefix(rt)}/namespaces/${encodeURIComponent(namespace)}/${rt.plural}`;
  }
  return `${groupPrefix(rt)}/${rt.plural}`;
}

export function objectPath(rt: ResourceType, namespace: string | undefined, name: string, subresource?: string): string {
  if (rt.namespaced && !namespace) throw new Error(`${rt.kind} ${name} is namespaced but has no namespace`);
  const base = `${collectionPath(rt, rt.namespaced ? namespace : undefined)}/${encodeURIComponent(name)}`;
  return subresource ? `${base}/${subresource}` : base;
}

/** What may still be written once writes are fenced (raw-api.ts): the lease, to hand it over, and Events. */
export function writableWhenFenced(path: string): boolean {
  return [LEASES, EVENTS].some((rt) => path.startsWith(`/apis/${rt.group}/`));
}
