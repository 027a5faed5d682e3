import { describe, expect, it } from 'vitest';
import { APPLIED_HASH_ANNOTATION, desiredHash } from '../../operator/kube/apply.ts';
import { canonicalJson, hashJson, jsonEqual, mergePatch, partialMergePatch } from '../../operator/kube/json.ts';
import type { KubeObject } from '../../operator/kube/types.ts';

describe('canonicalJson / hashJson / jsonEqual', () => {
  it('ignores key order and undefined members, at every level', () => {
    const a = { b: 1, a: { y: [1, { q: 1, p: 2 }], x: undefined } };
    const b = { a: { y: [1, { p: 2, q: 1 }] }, b: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(hashJson(a)).toBe(hashJson(b));
    expect(jsonEqual(a, b)).toBe(true);
  });

  it('sees any difference in values and array order', () => {
    expect(jsonEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: '1' })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: null })).toBe(false);
    expect(hashJson({ a: 1 })).not.toBe(hashJson({ a: 2 }));
  });

  it('writes what sorting every object\'s keys and then JSON.stringify wrote (hashes of it are stored on live CronJobs)', () => {
    // The form before canonicalJson was written in one pass, as the reference.
    const sortKeys = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(sortKeys);
      if (v === null || typeof v !== 'object') return v;
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
      return out;
    };
    const reference = (v: unknown) => JSON.stringify(sortKeys(JSON.parse(JSON.stringify(v) ?? 'null'))) ?? 'null';
    const sparse = [1, , 3]; // eslint-disable-line no-sparse-arrays
    const values: unknown[] = [
      null, undefined, 0, -0, 1.5e21, Number.NaN, 'x"\\\n', true, [], {}, sparse,
      { b: 1, a: [{ z: 1, y: undefined, x: null }, undefined, () => 1], c: { '10': 1, '9': 2, '1a': 3, '': 4, '01': 5, '4294967295': 6, '4294967294': 7 } },
      { t: new Date('2026-01-01T00:00:00Z'), n: { toJSON: () => ({ b: 2, a: 1 }) } },
      { metadata: { labels: { 'app.kubernetes.io/name': 'x', '2': 'two', '1': 'one' } }, spec: { template: { spec: { containers: [{ name: 'c', env: [{ name: 'B', value: '1' }] }] } } } },
    ];
    for (const v of values) expect(canonicalJson(v), JSON.stringify(v)).toBe(reference(v));
  });

  it('compares Dates by their JSON form', () => {
    expect(jsonEqual({ t: new Date('2026-01-01T00:00:00Z') }, { t: '2026-01-01T00:00:00.000Z' })).toBe(true);
  });
});

describe('desiredHash', () => {
  it('does not depend on the hash annotation itself', () => {
    const desired: KubeObject & { spec: object } = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'a', namespace: 'ns', annotations: { keep: 'x' } }, spec: { schedule: '* * * * *' } };
    const withHash = { ...desired, metadata: { ...desired.metadata, annotations: { keep: 'x', [APPLIED_HASH_ANNOTATION]: 'old' } } };
    expect(desiredHash(withHash)).toBe(desiredHash(desired));
    expect(desiredHash({ ...desired, spec: { schedule: '0 * * * *' } } as KubeObject)).not.toBe(desiredHash(desired));
  });
});

describe('mergePatch', () => {
  it('is undefined for equal documents', () => {
    expect(mergePatch({ a: { b: 1 } }, { a: { b: 1 } })).toBeUndefined();
  });

  it('sets changed members, nulls removed ones, replaces arrays', () => {
    expect(mergePatch({ a: 1, b: { c: 1, d: 2 }, e: [1, 2], gone: true }, { a: 2, b: { c: 1 }, e: [1] })).toEqual({
      a: 2,
      b: { d: null },
      e: [1],
      gone: null,
    });
  });
});

describe('partialMergePatch (status)', () => {
  const live = {
    observedGeneration: 3,
    succeeded: 4,
    lastRun: { runId: 'r1', outcome: 'Succeeded', summary: { n: 1 } },
    conditions: [{ type: 'Ready', status: 'True' }],
  };

  it('is undefined when every named member already matches', () => {
    expect(partialMergePatch(live, { succeeded: 4, conditions: [{ status: 'True', type: 'Ready' }] })).toBeUndefined();
  });

  it('leaves members it does not name alone (the runner owns lastRun)', () => {
    expect(partialMergePatch(live, { succeeded: 5 })).toEqual({ succeeded: 5 });
  });

  it('removes a member set to undefined, and stale sub-members of a named member', () => {
    expect(partialMergePatch(live, { observedGeneration: undefined })).toEqual({ observedGeneration: null });
    expect(partialMergePatch(live, { lastRun: { runId: 'r1', outcome: 'Succeeded' } })).toEqual({ lastRun: { summary: null } });
    expect(partialMergePatch(live, { absent: undefined })).toBeUndefined();
  });

  it('writes everything against an object without status', () => {
    expect(partialMergePatch(undefined, { succeeded: 0 })).toEqual({ succeeded: 0 });
  });
});
