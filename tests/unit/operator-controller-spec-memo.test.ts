// Validation and desired CronJob computed once per spec: keyed by the task's uid and generation
// and the families config's identity, bounded.
import { describe, expect, it } from 'vitest';
import { DEFAULT_FAMILIES, parseFamiliesConfig } from '../../operator/config/families.ts';
import { SpecMemo } from '../../operator/controller/spec-memo.ts';
import { makeTask } from './operator-controller-fixtures.ts';

describe('SpecMemo', () => {
  it('computes once per uid, generation and families config', () => {
    const memo = new SpecMemo<number>();
    let computed = 0;
    const compute = () => ++computed;
    const task = makeTask();
    expect(memo.get(task, DEFAULT_FAMILIES, compute)).toBe(1);
    expect(memo.get({ ...task, status: { succeeded: 3 } } as typeof task, DEFAULT_FAMILIES, compute)).toBe(1); // status is not the spec
    expect(memo.get({ ...task, metadata: { ...task.metadata, generation: 2 } }, DEFAULT_FAMILIES, compute)).toBe(2);
    const other = parseFamiliesConfig('email: { concurrency: 2 }');
    expect(memo.get({ ...task, metadata: { ...task.metadata, generation: 2 } }, other, compute)).toBe(3);
    expect(memo.get(makeTask({ name: 'other', uid: 'uid-other' }), other, compute)).toBe(4);
    memo.forget(task.metadata.uid);
    expect(memo.get({ ...task, metadata: { ...task.metadata, generation: 2 } }, other, compute)).toBe(5);
  });

  it('forgets the least recently used task beyond its capacity', () => {
    const memo = new SpecMemo<string>(2);
    const a = makeTask({ name: 'a', uid: 'uid-a' });
    const b = makeTask({ name: 'b', uid: 'uid-b' });
    const c = makeTask({ name: 'c', uid: 'uid-c' });
    memo.get(a, DEFAULT_FAMILIES, () => 'a1');
    memo.get(b, DEFAULT_FAMILIES, () => 'b1');
    memo.get(a, DEFAULT_FAMILIES, () => 'a2'); // a used again: b is now the oldest
    memo.get(c, DEFAULT_FAMILIES, () => 'c1');
    expect(memo.size).toBe(2);
    expect(memo.get(a, DEFAULT_FAMILIES, () => 'a3')).toBe('a1');
    expect(memo.get(b, DEFAULT_FAMILIES, () => 'b2')).toBe('b2');
  });
});
