// The generated openAPIV3Schema is structural, and its CEL rules stay within the apiserver's
// cost budget; the converter refuses what it cannot express instead of emitting it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import * as z from 'zod';
import { CRD_PATH } from '../../crds/crd-path.ts';
import { NonStructuralSchemaError, toStructuralSchema } from '../../crds/structural.ts';

type Node = Record<string, any>;
const root: Node = parse(readFileSync(CRD_PATH, 'utf8')).spec.versions[0].schema.openAPIV3Schema;

/** Every schema node with its path (`.spec.env[*].name`, `.status.lastRun.summary.*`). */
function nodes(node: Node, path = ''): [string, Node][] {
  const found: [string, Node][] = [[path || '.', node]];
  for (const [name, child] of Object.entries(node.properties ?? {})) found.push(...nodes(child as Node, `${path}.${name}`));
  if (node.items) found.push(...nodes(node.items, `${path}[*]`));
  if (typeof node.additionalProperties === 'object') found.push(...nodes(node.additionalProperties, `${path}.*`));
  for (const branch of node.anyOf ?? []) found.push(...nodes(branch, `${path}|anyOf`).slice(0, 1));
  return found;
}

const all = nodes(root);
const where = (predicate: (n: Node) => boolean) => all.filter(([, n]) => predicate(n)).map(([p]) => p);

describe('the CRD schema is structural', () => {
  it('types every node, except int-or-string and preserve-unknown-fields ones', () => {
    const untyped = where((n) => !n.type && !n['x-kubernetes-int-or-string'] && !n['x-kubernetes-preserve-unknown-fields']);
    expect(untyped).toEqual([]);
  });

  it('has no $ref, definitions, oneOf, allOf or not', () => {
    expect(JSON.stringify(root)).not.toMatch(/"\$ref"|"\$defs"|"definitions"|"oneOf"|"allOf"|"not"/);
  });

  it('uses anyOf only in the int-or-string form, with nothing but type inside', () => {
    for (const [path, node] of all.filter(([, n]) => n.anyOf)) {
      expect(node['x-kubernetes-int-or-string'], path).toBe(true);
      expect(node.anyOf, path).toEqual([{ type: 'integer' }, { type: 'string' }]);
    }
    expect(where((n) => n.anyOf)).toContain('.spec.resources.limits.cpu');
  });

  it('never sets additionalProperties next to properties, nor to a boolean', () => {
    expect(where((n) => n.properties && n.additionalProperties !== undefined)).toEqual([]);
    expect(where((n) => typeof n.additionalProperties === 'boolean')).toEqual([]);
  });

  it('preserves unknown fields only in spec.params and the lastRun summary values', () => {
    expect(where((n) => n['x-kubernetes-preserve-unknown-fields'])).toEqual(['.spec.params', '.status.lastRun.summary.*']);
  });

  it('restricts metadata to its name only, as the apiserver requires', () => {
    expect(root.properties.metadata).toEqual({ type: 'object', properties: { name: { type: 'string', maxLength: 63, description: expect.stringMatching(/^Name of the task/) } } });
  });

  it('requires the keys of its map-type lists', () => {
    const lists = all.filter(([, n]) => n['x-kubernetes-list-type'] === 'map');
    expect(lists.map(([p]) => p)).toEqual(['.spec.env', '.status.conditions']);
    for (const [path, list] of lists) {
      for (const key of list['x-kubernetes-list-map-keys']) expect(list.items.required, path).toContain(key);
    }
  });

  it('uses only nullable: true, never nullable: false (the default)', () => {
    expect(where((n) => n.nullable === false)).toEqual([]);
  });
});

describe('the CEL rules stay cheap enough for the apiserver to accept them', () => {
  // The apiserver estimates a rule's worst case from maxLength/maxItems/maxProperties and refuses
  // the CRD when that is too high; unbounded strings and lists make the estimate explode.
  it('bounds the length of every string a rule runs a regex or string function on', () => {
    const unbounded = where((n) => n.type === 'string' && n['x-kubernetes-validations'] && n.maxLength === undefined);
    expect(unbounded).toEqual([]);
  });

  it('bounds every list and map whose items carry rules', () => {
    const hasRules = (n: Node | undefined): boolean => !!n && (!!n['x-kubernetes-validations'] || Object.values(n.properties ?? {}).some((c) => hasRules(c as Node)));
    expect(where((n) => n.type === 'array' && hasRules(n.items) && n.maxItems === undefined)).toEqual([]);
    expect(where((n) => typeof n.additionalProperties === 'object' && hasRules(n.additionalProperties) && n.maxProperties === undefined)).toEqual([]);
  });

  it('skips the schedule\'s regular expressions when the schedule did not change, and only then', () => {
    const rules = all.find(([path]) => path === '.spec.schedule')![1]['x-kubernetes-validations'] as Node[];
    expect(rules.length).toBeGreaterThan(5);
    for (const v of rules) {
      expect(v.optionalOldSelf, v.rule).toBe(true);
      expect(v.rule).toMatch(/^\(oldSelf\.hasValue\(\) && self == oldSelf\.value\(\)\) \|\| \(.+\)$/);
    }
    // Cheap rules stay plain: a guard would cost more than the rule.
    expect(all.find(([path]) => path === '.spec.timeZone')![1]['x-kubernetes-validations']).toEqual([expect.not.objectContaining({ optionalOldSelf: true })]);
  });

  it('gives every rule a human message saying what must hold', () => {
    for (const [path, node] of all) {
      for (const v of node['x-kubernetes-validations'] ?? []) {
        expect(v.message, `${path}: ${v.rule}`).toMatch(/\bmust\b/);
      }
    }
  });
});

const tree: z.ZodType = z.object({ name: z.string(), get children() { return z.array(tree).optional(); } });

describe('toStructuralSchema', () => {
  it('turns nullable into nullable: true and const into a one-value enum', () => {
    expect(toStructuralSchema(z.object({ a: z.string().nullable(), b: z.literal('x') }))).toEqual({
      type: 'object',
      properties: { a: { type: 'string', nullable: true }, b: { type: 'string', enum: ['x'] } },
      required: ['a', 'b'],
    });
  });

  it('makes a nullable object one typed node', () => {
    expect(toStructuralSchema(z.object({ a: z.string() }).nullable())).toEqual({
      type: 'object',
      nullable: true,
      properties: { a: { type: 'string' } },
      required: ['a'],
    });
  });

  it('writes exclusive bounds as OpenAPI v3 flags', () => {
    expect(toStructuralSchema(z.number().gt(0).lt(1))).toEqual({ type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 1, exclusiveMaximum: true });
  });

  it('drops zod\'s safe-integer bounds and its date-time regex, keeps real ones', () => {
    expect(toStructuralSchema(z.int().min(3))).toEqual({ type: 'integer', minimum: 3 });
    expect(toStructuralSchema(z.iso.datetime())).toEqual({ type: 'string', format: 'date-time' });
  });

  it('writes an int-or-string union the way core types do, constraints hoisted', () => {
    const quantity = z.union([z.int(), z.string().regex(/^[0-9]+m$/)]).meta({ 'x-kubernetes-int-or-string': true });
    expect(toStructuralSchema(quantity)).toEqual({
      pattern: '^[0-9]+m$',
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      'x-kubernetes-int-or-string': true,
    });
  });

  it('leaves defaulted fields out of required: the apiserver fills them in', () => {
    expect(toStructuralSchema(z.object({ a: z.int().default(1) }))).toEqual({ type: 'object', properties: { a: { type: 'integer', default: 1 } } });
  });

  it.each([
    ['an unmarked union', z.union([z.string(), z.int()])],
    ['an int-or-string mark on another union', z.union([z.string(), z.boolean()]).meta({ 'x-kubernetes-int-or-string': true })],
    ['a union of objects', z.union([z.object({ a: z.string() }), z.int()]).meta({ 'x-kubernetes-int-or-string': true })],
    ['an untyped value', z.object({ a: z.unknown() })],
    ['a map with constrained keys', z.record(z.string().regex(/^x/), z.string())],
    ['a map with required keys', z.record(z.enum(['a', 'b']), z.string())],
    ['a nullable union', z.union([z.string(), z.int()]).nullable()],
    ['a recursive schema', tree],
  ])('refuses %s', (_what, schema) => {
    expect(() => toStructuralSchema(schema as z.ZodType)).toThrow(NonStructuralSchemaError);
  });
});
