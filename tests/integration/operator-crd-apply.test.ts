// `operator crd apply` (operator/crd-apply.ts) against the kind cluster's CRD: an older CRD left
// by Helm becomes this build's, what it had that this build dropped goes with it, others' labels
// and annotations stay, and a CRD already current costs no write.
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CRD_NAME, SCHEMA_HASH_ANNOTATION, crdSchemaHash, customResourceDefinition } from '../../crds/definition.ts';
import { applyCrd } from '../../operator/crd-apply.ts';
import { RawApi } from '../../operator/kube/raw-api.ts';
import { installCrd, kubectl, kubectlJson } from '../support/kube.ts';

interface ServedCrd {
  metadata: { resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { versions: { additionalPrinterColumns?: { name: string }[]; selectableFields?: { jsonPath: string }[]; schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } } }[] };
  status: { conditions: { type: string; status: string }[] };
}

const served = () => kubectlJson<ServedCrd>(['get', 'crd', CRD_NAME]);
const specFields = (crd: ServedCrd) => Object.keys(crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties).sort();
const columns = (crd: ServedCrd) => (crd.spec.versions[0]!.additionalPrinterColumns ?? []).map((c) => c.name);

describe('operator crd apply', () => {
  let raw: RawApi;
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });

  beforeAll(async () => {
    await installCrd();
    const kc = new KubeConfig();
    kc.loadFromFile(inject('kubeconfig'));
    raw = new RawApi(kc);
  });
  afterAll(async () => {
    await installCrd(); // whatever a failed test left, the generated CRD again
    await raw?.close();
  });

  it('brings an older CRD to this build\'s, keeping others\' labels and annotations, and waits until it serves', async () => {
    // What a Helm install of an older chart leaves: written by an Update (kubectl replace, as
    // Helm's create is), with a column this build dropped, without one it added, another hash,
    // and a label and annotation of someone else's.
    const older = customResourceDefinition() as any;
    const version = older.spec.versions[0];
    version.additionalPrinterColumns = [...version.additionalPrinterColumns.filter((c: any) => c.name !== 'Message'), { name: 'Legacy', type: 'string', jsonPath: '.spec.task' }];
    version.schema.openAPIV3Schema.properties.spec.properties.legacy = { type: 'string', description: 'A field this build dropped.' };
    version.selectableFields = [{ jsonPath: '.spec.task' }];
    older.metadata.annotations = { [SCHEMA_HASH_ANNOTATION]: '0123456789abcdef', 'example.com/owner': 'platform-team' };
    older.metadata.labels = { 'example.com/tier': 'core' };
    await kubectl(['replace', '-f', '-'], { input: JSON.stringify(older) });
    expect(columns(await served())).toContain('Legacy');
    expect(specFields(await served())).toContain('legacy');
    expect((await served()).spec.versions[0]!.selectableFields).toEqual([{ jsonPath: '.spec.task' }]);

    const result = await applyCrd({ raw, log });
    expect(result).toEqual({ action: 'updated', hash: crdSchemaHash(), previous: '0123456789abcdef' });
    const after = await served();
    expect(columns(after)).toEqual(columns(customResourceDefinition() as unknown as ServedCrd));
    expect(columns(after)).not.toContain('Legacy');
    expect(specFields(after)).toEqual(specFields(customResourceDefinition() as unknown as ServedCrd));
    expect(after.spec.versions[0]!.selectableFields).toBeUndefined();
    expect(after.metadata.annotations).toMatchObject({ [SCHEMA_HASH_ANNOTATION]: crdSchemaHash(), 'example.com/owner': 'platform-team' });
    expect(after.metadata.labels).toMatchObject({ 'example.com/tier': 'core' });
    expect(after.status.conditions.filter((c) => ['Established', 'NamesAccepted'].includes(c.type)).map((c) => c.status)).toEqual(['True', 'True']);
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.action === 'updated');
    expect(logged).toMatchObject({ crd: CRD_NAME, previous: '0123456789abcdef', hash: crdSchemaHash() });
  });

  it('makes no write when the served CRD is already this build\'s', async () => {
    const before = (await served()).metadata.resourceVersion;
    expect(await applyCrd({ raw, log })).toEqual({ action: 'unchanged', hash: crdSchemaHash(), previous: crdSchemaHash() });
    expect((await served()).metadata.resourceVersion).toBe(before);
  });
});
