import { describe, expect, it } from 'vitest';
import { MAX_SUMMARY_KEYS, Summary } from '../../task-runner/summary.ts';

describe('Summary', () => {
  it('counts and sets, sorted by key', () => {
    const s = new Summary();
    s.count('sessions_cleaned', 200);
    s.count('batches');
    s.count('sessions_cleaned', 50);
    s.set('more_pending', true);
    expect(s.toJSON()).toEqual({ batches: 1, more_pending: true, sessions_cleaned: 250 });
    expect(Object.keys(s.toJSON())).toEqual(['batches', 'more_pending', 'sessions_cleaned']);
  });

  it('refuses keys that are not snake_case, and values the status cannot hold', () => {
    const s = new Summary();
    expect(() => s.count('sessionsCleaned')).toThrow(/snake_case/);
    expect(() => s.set('ratio', Number.NaN)).toThrow(/not a finite number/);
    expect(() => s.set('note', 'x'.repeat(1025))).toThrow(/at most 1024/);
    s.set('label', 'text');
    expect(() => s.count('label')).toThrow(/holds a string, not a counter/);
  });

  it(`holds at most ${MAX_SUMMARY_KEYS} keys, as the CRD allows`, () => {
    const s = new Summary();
    for (let i = 0; i < MAX_SUMMARY_KEYS; i++) s.count(`k_${i}`);
    s.count('k_0'); // an existing key still counts
    expect(() => s.set('one_more', 1)).toThrow(/at most 64 keys/);
  });
});
