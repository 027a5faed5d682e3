// Turns a zod schema into an OpenAPI v3 schema the apiserver accepts as *structural*
// (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
// every node typed, no $ref, no additionalProperties beside properties, unions only in the
// int-or-string form. zod's own z.toJSONSchema does the walk; this module rewrites what it emits
// into that subset and throws on anything it cannot express, so a schema change that the CRD
// cannot carry fails generation instead of producing a CRD the apiserver rejects.
import * as z from 'zod';
import { VALIDATIONS_KEY } from './rules.ts';

export type JSONSchemaProps = { [key: string]: unknown };

const INT_OR_STRING = 'x-kubernetes-int-or-string';
const PRESERVE_UNKNOWN_FIELDS = 'x-kubernetes-preserve-unknown-fields';

/** Keys emitted, in this order; anything else zod emits is an error. */
const KEY_ORDER = [
  'description',
  'type',
  'format',
  'enum',
  'default',
  'nullable',
  'minimum',
  'exclusiveMinimum',
  'maximum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'anyOf',
  'items',
  'properties',
  'additionalProperties',
  'required',
  INT_OR_STRING,
  PRESERVE_UNKNOWN_FIELDS,
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  VALIDATIONS_KEY,
] as const;

/** Keys of a scalar schema that belong outside an int-or-string anyOf: they constrain only their own type. */
const SCALAR_CONSTRAINTS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'pattern'];

export class NonStructuralSchemaError extends Error {
  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.name = 'NonStructuralSchemaError';
  }
}

/** The structural OpenAPI v3 schema of a zod schema, as for a CRD's openAPIV3Schema. */
export function toStructuralSchema(schema: z.ZodType): JSONSchemaProps {
  // io 'input': fields with defaults are not required, since the apiserver fills them in.
  // The default target (JSON Schema 2020-12) rather than 'openapi-3.0', which silently drops what
  // it cannot say (constraints on map keys): here such losses must be errors.
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }) as JSONSchemaProps;
  delete json.$schema;
  return structural(json, '');
}

function structural(node: JSONSchemaProps, path: string): JSONSchemaProps {
  const out: JSONSchemaProps = { ...node };
  const here = path || '<root>';
  for (const key of ['$ref', '$defs', 'definitions', 'oneOf', 'allOf', 'not']) {
    if (key in out) throw new NonStructuralSchemaError(here, `${key} cannot be expressed in a structural schema`);
  }

  if (Array.isArray(out.type)) splitTypeList(out, here);
  if (out.anyOf !== undefined) liftNullable(out, here);
  simplifyScalar(out);
  if (out.anyOf !== undefined) rewriteUnion(out, here);

  if (out[PRESERVE_UNKNOWN_FIELDS] === true) {
    // A free-form object: zod's `additionalProperties: {}` is what preserve-unknown-fields means.
    delete out.additionalProperties;
  }
  if (out.additionalProperties === false) delete out.additionalProperties; // unknown fields are pruned anyway
  if (out.propertyNames !== undefined) {
    // A CRD cannot constrain map keys; z.record(z.string(), …) says nothing a CRD map does not.
    const names = out.propertyNames as JSONSchemaProps;
    if (Object.keys(names).some((k) => k !== 'type') || names.type !== 'string') {
      throw new NonStructuralSchemaError(here, 'map keys other than plain strings cannot be constrained in a CRD');
    }
    delete out.propertyNames;
  }

  if (out.required !== undefined && out.properties === undefined) {
    throw new NonStructuralSchemaError(here, 'a map cannot require keys (use an object with properties)');
  }
  if (out.properties !== undefined) {
    if (out.additionalProperties !== undefined) {
      throw new NonStructuralSchemaError(here, 'properties and additionalProperties are mutually exclusive');
    }
    const properties: JSONSchemaProps = {};
    for (const [name, child] of Object.entries(out.properties as JSONSchemaProps)) {
      properties[name] = structural(child as JSONSchemaProps, `${path}.${name}`);
    }
    out.properties = properties;
  }
  if (out.additionalProperties !== undefined) {
    const values = out.additionalProperties;
    if (typeof values !== 'object' || values === null || Object.keys(values).length === 0) {
      throw new NonStructuralSchemaError(here, 'additionalProperties must be a typed schema');
    }
    out.additionalProperties = structural(values as JSONSchemaProps, `${path}.*`);
  }
  if (out.items !== undefined) out.items = structural(out.items as JSONSchemaProps, `${path}[*]`);

  if (out.type === undefined && out[INT_OR_STRING] !== true && out[PRESERVE_UNKNOWN_FIELDS] !== true) {
    throw new NonStructuralSchemaError(here, 'every node needs a type (unknown/any values are not structural)');
  }
  return ordered(out, here);
}

/** zod writes a union of bare types as `type: [a, b]`: make that `nullable` and/or an `anyOf`. */
function splitTypeList(out: JSONSchemaProps, here: string): void {
  const listed = out.type as string[];
  const types = listed.filter((t) => t !== 'null');
  if (types.length < listed.length) out.nullable = true;
  if (types.length === 1) {
    out.type = types[0];
    return;
  }
  if (out.anyOf !== undefined) throw new NonStructuralSchemaError(here, 'both a type list and anyOf');
  delete out.type;
  out.anyOf = types.map((type) => ({ type }));
}

/** zod writes `.nullable()` as `anyOf: [X, {type: 'null'}]`; OpenAPI v3 says `X` with `nullable: true`. */
function liftNullable(out: JSONSchemaProps, here: string): void {
  const branches = out.anyOf as JSONSchemaProps[];
  const others = branches.filter((b) => b.type !== 'null');
  if (others.length === branches.length) return;
  if (others.length !== 1) throw new NonStructuralSchemaError(here, 'only a single schema can be made nullable');
  delete out.anyOf;
  for (const [key, value] of Object.entries(others[0] as JSONSchemaProps)) {
    if (key in out) throw new NonStructuralSchemaError(here, `nullable schema sets ${key} twice`);
    out[key] = value;
  }
  out.nullable = true;
}

/** Rewrites what zod emits for scalars into what the apiserver reads best. */
function simplifyScalar(node: JSONSchemaProps): void {
  if ('const' in node) {
    node.enum = [node.const];
    delete node.const;
  }
  // JSON Schema 2020-12 writes exclusive bounds as numbers, OpenAPI v3 as flags on minimum/maximum.
  if (typeof node.exclusiveMinimum === 'number') {
    node.minimum = node.exclusiveMinimum;
    node.exclusiveMinimum = true;
  }
  if (typeof node.exclusiveMaximum === 'number') {
    node.maximum = node.exclusiveMaximum;
    node.exclusiveMaximum = true;
  }
  // zod bounds every z.int() to the safe-integer range; the apiserver's int64 needs no such noise.
  if (node.minimum === Number.MIN_SAFE_INTEGER) delete node.minimum;
  if (node.maximum === Number.MAX_SAFE_INTEGER) delete node.maximum;
  // The apiserver checks format: date-time itself; zod's equivalent regex would only duplicate it.
  if (node.format === 'date-time') delete node.pattern;
  // RegExp.source escapes '/', which JSON Schema patterns need not.
  if (typeof node.pattern === 'string') node.pattern = node.pattern.replace(/(?<!\\)\\\//g, '/');
}

/**
 * The only unions a structural schema allows are int-or-string. A zod union of scalars becomes
 * either, marked x-kubernetes-int-or-string, the canonical `anyOf: [{type: integer}, {type: string}]`,
 * or, marked x-kubernetes-preserve-unknown-fields, an untyped node the apiserver does not
 * type-check. Either way the branches' constraints are hoisted: each applies to its own type only.
 */
function rewriteUnion(out: JSONSchemaProps, here: string): void {
  const intOrString = out[INT_OR_STRING] === true;
  if (!intOrString && out[PRESERVE_UNKNOWN_FIELDS] !== true) {
    throw new NonStructuralSchemaError(here, 'a union must be marked x-kubernetes-int-or-string or x-kubernetes-preserve-unknown-fields');
  }
  const branches = out.anyOf as JSONSchemaProps[];
  delete out.anyOf;
  for (const branch of branches) {
    simplifyScalar(branch);
    if (!['number', 'integer', 'string', 'boolean'].includes(branch.type as string)) {
      throw new NonStructuralSchemaError(here, 'only unions of scalars can be expressed');
    }
    for (const [key, value] of Object.entries(branch)) {
      if (key === 'type') continue;
      if (!SCALAR_CONSTRAINTS.includes(key)) throw new NonStructuralSchemaError(here, `cannot hoist ${key} out of a union branch`);
      if (key in out) throw new NonStructuralSchemaError(here, `two union branches set ${key}`);
      out[key] = value;
    }
  }
  if (intOrString) {
    const types = branches.map((b) => b.type as string).sort();
    if (types.join() !== 'integer,string') {
      throw new NonStructuralSchemaError(here, `an x-kubernetes-int-or-string union must be integer|string, not ${types.join('|')}`);
    }
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
}

function ordered(node: JSONSchemaProps, here: string): JSONSchemaProps {
  const unknown = Object.keys(node).filter((k) => !(KEY_ORDER as readonly string[]).includes(k));
  if (unknown.length > 0) throw new NonStructuralSchemaError(here, `unsupported keywords ${unknown.join(', ')}`);
  const out: JSONSchemaProps = {};
  for (const key of KEY_ORDER) if (node[key] !== undefined) out[key] = node[key];
  return out;
}
