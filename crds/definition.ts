// The BackgroundTask CustomResourceDefinition as an object, built from the zod schemas in
// crds/schema.ts: generate.ts writes it as YAML, and the operator compares the CRD the cluster
// serves against it (operator/crd-check.ts). Its spec's hash is stamped on the CRD as an
// annotation, so "is the served CRD the one this build expects?" is one string comparison.
import { createHash } from 'node:crypto';
import {
  API_GROUP,
  API_VERSION,
  CATEGORIES,
  KIND,
  LIST_KIND,
  MAX_NAME_LENGTH,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  backgroundTaskSpecSchema,
  backgroundTaskStatusSchema,
  metadataNameSchema,
} from './schema.ts';
import { toStructuralSchema, type JSONSchemaProps } from './structural.ts';

export const CRD_NAME = `${PLURAL}.${API_GROUP}`;
/** On the CRD: the hash of its spec (names, versions, schema, columns) as generated. */
export const SCHEMA_HASH_ANNOTATION = `${API_GROUP}/schema-hash`;

/** Columns of `kubectl get bgt`. */
export const PRINTER_COLUMNS = [
  { name: 'Task', type: 'string', jsonPath: '.spec.task' },
  { name: 'Family', type: 'string', jsonPath: '.status.family' },
  { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule' },
  { name: 'Suspended', type: 'boolean', jsonPath: '.spec.suspend' },
  // False when the spec cannot be run (unknown task, bad params, time zone): the reason is in -o wide.
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  // The run whose outcome Result shows; empty until a first run has finished.
  { name: 'Last Run', type: 'date', jsonPath: '.status.lastRun.completionTime' },
  { name: 'Result', type: 'string', jsonPath: '.status.lastRun.outcome' },
  // A string, not a date: kubectl prints a date column as an age, and a future time as <invalid>.
  { name: 'Next Run', type: 'string', jsonPath: '.status.nextScheduleTime' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  // -o wide: why a task is not Ready, and whether a run waits for a slot of its family.
  { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
  { name: 'Queued', type: 'string', jsonPath: '.status.conditions[?(@.type=="Queued")].status', priority: 1 },
  { name: 'Message', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].message', priority: 1 },
];

export function openApiSchema(): JSONSchemaProps {
  return {
    description: 'A piece of a personal assistant\'s background work, run on a schedule by the bgtask operator.',
    type: 'object',
    properties: {
      // The descriptions Kubernetes' own types give these three.
      apiVersion: {
        type: 'string',
        description:
          'APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.',
      },
      kind: {
        type: 'string',
        description:
          'Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. In CamelCase.',
      },
      // The apiserver only lets a CRD restrict metadata.name and metadata.generateName: metadata
      // itself may not even carry a description.
      metadata: {
        type: 'object',
        properties: { name: { ...toStructuralSchema(metadataNameSchema), description: `Name of the task, at most ${MAX_NAME_LENGTH} characters: its CronJob's name is derived from it.` } },
      },
      spec: toStructuralSchema(backgroundTaskSpecSchema),
      status: toStructuralSchema(backgroundTaskStatusSchema),
    },
    required: ['spec'],
  };
}

/** The CRD's spec; its hash is the schema-hash annotation. */
function crdSpec(): Record<string, unknown> {
  return {
    group: API_GROUP,
    names: {
      kind: KIND,
      listKind: LIST_KIND,
      plural: PLURAL,
      singular: SINGULAR,
      shortNames: [...SHORT_NAMES],
      categories: [...CATEGORIES],
    },
    scope: 'Namespaced',
    versions: [
      {
        name: API_VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: PRINTER_COLUMNS,
        schema: { openAPIV3Schema: openApiSchema() },
      },
    ],
  };
}

/** sha256 of the spec's JSON (its key order is fixed by crdSpec), first 16 hex digits. */
export function crdSchemaHash(spec: Record<string, unknown> = crdSpec()): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
}

export function customResourceDefinition(): Record<string, unknown> {
  const spec = crdSpec();
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME, annotations: { [SCHEMA_HASH_ANNOTATION]: crdSchemaHash(spec) } },
    spec,
  };
}

