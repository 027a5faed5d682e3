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
