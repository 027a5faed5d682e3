// The CRD at the real apiserver: it is accepted (structural, CEL compiles within the cost budget),
// and a server-side dry-run create accepts every valid manifest of the corpus and rejects every
// invalid one with the expected message, at the expected field.
import { ApiException, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { API_GROUP, API_VERSION, PLURAL } from '../../crds/schema.ts';
import { invalidCases, validCases } from '../fixtures/crd/corpus.ts';
import { installCrd, kubectlRaw } from '../support/kube.ts';

const NAMESPACE = 'default';

let customObjects: CustomObjectsApi;

function connect(): void {
  // The integration globalSetup brings the cluster up and hands its kubeconfig over.
  const config = new KubeConfig();
  config.loadFromFile(inject('kubeconfig'));
  customObjects = config.makeApiClient(CustomObjectsApi);
}

/** A dry-run create; resolves to the apiserver's error message, or undefined when it accepted the object. */
async function dryRunCreate(manifest: Record<string, unknown>): Promise<string | undefined> {
  try {
    await customObjects.createNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      namespace: NAMESPACE,
      plural: PLURAL,
      body: manifest,
      dryRun: 'All',
      // Strict: a typo in a fixture is an error rather than a silently pruned field.
      fieldValidation: 'Strict',
    });
    return undefined;
  } catch (error) {
    return unprocessableMessage(error);
  }
}

/** The apiserver's message of a 422 Unprocessable Entity; any other error is rethrown. */
function unprocessableMessage(error: unknown): string {
  if (!(error instanceof ApiException)) throw error;
  const body = typeof error.body === 'string' ? error.body : JSON.stringify(error.body);
  let message = body;
  try {
    message = (JSON.parse(body) as { message?: string }).message ?? body;
  } catch {
    // not JSON: keep the raw body
  }
  if (error.code !== 422) throw new Error(`expected 422 Unprocessable Entity, got ${error.code}: ${message}`);
  return message;
}

beforeAll(async () => {
  connect();
  await installCrd();
  // A newly Established CRD can still answer 404 for a moment while its handler starts.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await customObjects.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: NAMESPACE, plural: PLURAL });
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
});

describe('the apiserver accepts every valid BackgroundTask', () => {
  it.each(validCases().map((c) => [c.file, c] as const))('%s', async (_file, { manifest }) => {
    expect(await dryRunCreate(manifest)).toBeUndefined();
  });
});

describe('the apiserver rejects every invalid BackgroundTask with the expected message', () => {
  it.each(invalidCases().map((c) => [c.file, c] as const))('%s', async (_file, { manifest, expect: expected, field }) => {
    const message = await dryRunCreate(manifest);
    expect(message, 'the apiserver accepted it').toBeDefined();
    expect(message).toContain(expected);
    expect(message).toContain(`${field}:`);
  });
});

// The schedule's rules are skipped when the schedule is the one the object already had
// (skipUnchanged in crds/rules.ts): a changed schedule must still meet every one of them.
describe('on update, the apiserver checks a changed schedule and lets an unchanged one be', () => {
  const name = 'crd-validation-update';
  const object = { group: API_GROUP, version: API_VERSION, namespace: NAMESPACE, plural: PLURAL, name };
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

  /** A merge patch of the stored task (dry run); resolves to the apiserver's 422 message, or undefined when accepted. */
  async function dryRunPatch(body: object, subresource?: 'status'): Promise<string | undefined> {
    try {
      const params = { ...object, body, dryRun: 'All', fieldValidation: 'Strict' };
      if (subresource) await customObjects.patchNamespacedCustomObjectStatus(params, mergePatch);
      else await customObjects.patchNamespacedCustomObject(params, mergePatch);
      return undefined;
    } catch (error) {
      return unprocessableMessage(error);
    }
  }

  beforeAll(async () => {
    await customObjects.deleteNamespacedCustomObject(object).catch(() => undefined);
    await customObjects.createNamespacedCustomObject({
      ...object,
      body: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'BackgroundTask', metadata: { name }, spec: { task: 'maintenance.cleanup-old-sessions', schedule: '*/5 9-17 * JAN-DEC MON-FRI' } },
    });
    return () => customObjects.deleteNamespacedCustomObject(object).then(() => undefined);
  });

  const scheduleCases = invalidCases().filter((c) => c.field === 'spec.schedule' && typeof (c.manifest.spec as { schedule?: unknown }).schedule === 'string');

  it('has invalid schedules to try', () => {
    expect(scheduleCases.length).toBeGreaterThan(10);
  });

  it.each(scheduleCases.map((c) => [c.file, c] as const))('refuses the schedule of %s', async (_file, { manifest, expect: expected }) => {
    const message = await dryRunPatch({ spec: { schedule: (manifest.spec as { schedule: string }).schedule } });
    expect(message, 'the apiserver accepted it').toBeDefined();
    expect(message).toContain(expected);
    expect(message).toContain('spec.schedule:');
  });

  it('accepts a new valid schedule, another spec change and a status write beside the unchanged one', async () => {
    expect(await dryRunPatch({ spec: { schedule: '0 4 * * SUN' } })).toBeUndefined();
    expect(await dryRunPatch({ spec: { suspend: true } })).toBeUndefined();
    expect(await dryRunPatch({ status: { observedGeneration: 1 } }, 'status')).toBeUndefined();
  });
});

describe('`kubectl explain` documents the API from the served CRD', () => {
  it.each([
    ['status.lastRun.attempt', /1 for the first attempt, 2 for its first retry/],
    ['spec.resources.limits', /over its memory limit it is killed \(OOMKilled\)/],
    ['spec.env.valueFrom.secretKeyRef.optional', /may start without the Secret/],
  ])('bgt.%s', async (field, text) => {
    // The apiserver publishes a changed CRD's OpenAPI a moment after it is Established.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await kubectlRaw(['explain', `backgroundtasks.${field}`, `--api-version=${API_GROUP}/${API_VERSION}`]);
      if (r.code === 0 && text.test(r.stdout.replace(/\s+/g, ' '))) return;
      if (Date.now() > deadline) expect(`${r.stdout}${r.stderr}`.replace(/\s+/g, ' ')).toMatch(text);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  });
});
