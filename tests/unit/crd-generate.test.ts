// The committed CRD is exactly what crds/schema.ts generates, and says what `kubectl` users see.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CRD_NAME, SCHEMA_HASH_ANNOTATION, crdSchemaHash, customResourceDefinitionYaml } from '../../crds/definition.ts';
import { CRD_PATH } from '../../crds/crd-path.ts';
import { isCrdUpToDate } from '../../crds/generate.ts';
import { API_GROUP, API_VERSION, KIND, PLURAL } from '../../crds/schema.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const crd = parse(readFileSync(CRD_PATH, 'utf8'));
const version = crd.spec.versions[0];

describe('the committed CRD', () => {
  it('is what the generator produces from crds/schema.ts (else: npm run generate)', () => {
    expect(readFileSync(CRD_PATH, 'utf8')).toBe(customResourceDefinitionYaml());
  });

  it('passes `generate.ts --check`, run the way npm run generate runs it', () => {
    const run = spawnSync(process.execPath, ['--experimental-strip-types', 'crds/generate.ts', '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(run.stderr).not.toContain('stale');
    expect(run.status).toBe(0);
  });

  it('is reported stale when it differs from the schema or is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crd-'));
    const edited = join(dir, 'edited.yaml');
    writeFileSync(edited, customResourceDefinitionYaml().replace('maxLength: 63', 'maxLength: 64'));
    expect(isCrdUpToDate(edited)).toBe(false);
    expect(isCrdUpToDate(join(dir, 'missing.yaml'))).toBe(false);
    expect(isCrdUpToDate(CRD_PATH)).toBe(true);
  });

  it('declares the BackgroundTask API', () => {
    expect(crd.apiVersion).toBe('apiextensions.k8s.io/v1');
    expect(crd.metadata.name).toBe(`${PLURAL}.${API_GROUP}`);
    expect(crd.spec).toMatchObject({
      group: 'workers.personal-assistant.io',
      scope: 'Namespaced',
      names: { kind: KIND, plural: 'backgroundtasks', singular: 'backgroundtask', shortNames: ['bgt', 'bgtask'], categories: ['workers'] },
    });
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({ name: API_VERSION, served: true, storage: true, subresources: { status: {} } });
  });

  it('carries the hash of its spec, which the operator compares with its own; any change to the schema changes it', () => {
    expect(crd.metadata).toEqual({ name: CRD_NAME, annotations: { [SCHEMA_HASH_ANNOTATION]: crdSchemaHash() } });
    expect(crdSchemaHash()).toMatch(/^[0-9a-f]{16}$/);
    // The committed YAML's spec is the very JSON the hash is taken of.
    expect(crdSchemaHash(crd.spec)).toBe(crdSchemaHash());
    const edited = structuredClone(crd.spec);
    edited.versions[0].schema.openAPIV3Schema.properties.spec.properties.task.maxLength = 101;
    expect(crdSchemaHash(edited)).not.toBe(crdSchemaHash());
  });

  it('gives `kubectl get bgt` its columns', () => {
    const columns = version.additionalPrinterColumns.map(
      (c: { name: string; type: string; jsonPath: string; priority?: number }) => `${c.name}|${c.type}|${c.jsonPath}${c.priority ? `|wide` : ''}`,
    );
    expect(columns).toEqual([
      'Task|string|.spec.task',
      'Family|string|.status.family',
      'Schedule|string|.spec.schedule',
      'Suspended|boolean|.spec.suspend',
      'Ready|string|.status.conditions[?(@.type=="Ready")].status',
      'Last Run|date|.status.lastRun.completionTime',
      'Result|string|.status.lastRun.outcome',
      'Next Run|string|.status.nextScheduleTime',
      'Age|date|.metadata.creationTimestamp',
      'Reason|string|.status.conditions[?(@.type=="Ready")].reason|wide',
      'Queued|string|.status.conditions[?(@.type=="Queued")].status|wide',
      'Message|string|.status.conditions[?(@.type=="Ready")].message|wide',
    ]);
  });

  it('documents every field, for `kubectl explain bgt.<field>`', () => {
    type Node = { description?: string; properties?: Record<string, Node>; items?: Node; additionalProperties?: Node | boolean };
    const undocumented: string[] = [];
    const walk = (node: Node, path: string) => {
      // metadata is the one exception the apiserver forces: it refuses anything but type and name there.
      if (path && path !== '.metadata' && !node.description?.trim()) undocumented.push(path);
      for (const [key, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${key}`);
      if (node.items) walk(node.items, `${path}[]`);
      if (typeof node.additionalProperties === 'object') walk(node.additionalProperties, `${path}{}`);
    };
    const root: Node = version.schema.openAPIV3Schema;
    walk(root, '');
    expect(undocumented).toEqual([]);
    // The walk reaches the deepest fields (a walk that stopped early would find nothing missing).
    expect(root.properties!.spec!.properties!.env!.items!.properties!.valueFrom!.properties!.secretKeyRef!.properties!.key!.description).toMatch(/Secret/);
    expect(root.properties!.status!.properties!.lastRun!.properties!.summary!.additionalProperties).toMatchObject({ description: expect.any(String) });
  });

  it('defaults startingDeadlineSeconds, so an outage never leaves a task unscheduled for good', () => {
    const spec = version.schema.openAPIV3Schema.properties.spec.properties;
    expect(spec.startingDeadlineSeconds).toMatchObject({ type: 'integer', minimum: 10, default: 3600 });
    expect(spec.concurrencyPolicy.default).toBe('Forbid');
  });

  it('keeps the schema module free of run-time imports other than zod (the task-runner loads it)', () => {
    // Resolve what a plain `node` import of crds/schema.ts loads, excluding zod's own files.
    const script = `
      import { registerHooks } from 'node:module';
      const seen = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.push(r.url); return r; } });
      await import(${JSON.stringify(new URL('../../crds/schema.ts', import.meta.url).href)});
      console.log(JSON.stringify(seen.filter((u) => !u.includes('/node_modules/zod/'))));
    `;
    const loaded: string[] = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' }));
    const files = [...new Set(loaded)].map((u) => u.replace(new URL('../..', import.meta.url).href, ''));
    expect(files.sort()).toEqual(['crds/constants.ts', 'crds/cron.ts', 'crds/rules.ts', 'crds/schema.ts']);
  });
});
