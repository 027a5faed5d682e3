import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TIMING,
  claimRecord,
  heldByOther,
  releasedRecord,
  renewDeadlinePassed,
  validateTiming,
} from '../../operator/kube/leader-election.ts';

const T0 = Date.parse('2026-11-28T12:00:00Z');

describe('heldByOther', () => {
  const record = { holderIdentity: 'other', leaseDurationSeconds: 15 };

  it('is true while the holder\'s lease runs, measured from when we observed it', () => {
    expect(heldByOther(record, T0, T0 + 14_999, 'me')).toBe(true);
    expect(heldByOther(record, T0, T0 + 15_000, 'me')).toBe(false);
  });

  it('is false for our own lease, a released lease, or no lease', () => {
    expect(heldByOther({ ...record, holderIdentity: 'me' }, T0, T0, 'me')).toBe(false);
    expect(heldByOther({ leaseDurationSeconds: 1 }, T0, T0, 'me')).toBe(false);
    expect(heldByOther({ ...record, holderIdentity: '' }, T0, T0, 'me')).toBe(false);
    expect(heldByOther(undefined, T0, T0, 'me')).toBe(false);
  });

  it('ignores the renewTime written by the holder (its clock may be skewed)', () => {
    const skewed = { ...record, renewTime: '2020-01-01T00:00:00.000000Z' };
    expect(heldByOther(skewed, T0, T0 + 1000, 'me')).toBe(true);
  });
});

describe('claimRecord', () => {
  const now = new Date(T0);

  it('a first claim starts the lease with no transitions', () => {
    expect(claimRecord(undefined, 'me', now, 15_000)).toEqual({
      holderIdentity: 'me',
      leaseDurationSeconds: 15,
      acquireTime: '2026-11-28T12:00:00.000000Z',
      renewTime: '2026-11-28T12:00:00.000000Z',
      leaseTransitions: 0,
    });
  });

  it('a renewal keeps acquireTime and transitions and moves renewTime', () => {
    const held = { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: 'A', renewTime: 'R', leaseTransitions: 3 };
    expect(claimRecord(held, 'me', now, 15_000)).toMatchObject({ acquireTime: 'A', renewTime: '2026-11-28T12:00:00.000000Z', leaseTransitions: 3 });
  });

  it('taking over from another holder (or a released lease) counts a transition', () => {
    const theirs = { holderIdentity: 'other', leaseDurationSeconds: 15, acquireTime: 'A', renewTime: 'R', leaseTransitions: 3 };
    expect(claimRecord(theirs, 'me', now, 15_000)).toMatchObject({ holderIdentity: 'me', acquireTime: '2026-11-28T12:00:00.000000Z', leaseTransitions: 4 });
    expect(claimRecord({ leaseTransitions: 4 }, 'me', now, 15_000)).toMatchObject({ leaseTransitions: 5 });
  });

  it('rounds a sub-second lease duration up to whole seconds', () => {
    expect(claimRecord(undefined, 'me', now, 2_500).leaseDurationSeconds).toBe(3);
  });
});

describe('releasedRecord', () => {
  it('clears the holder, shortens the lease to 1 s and keeps the transition count', () => {
    const r = releasedRecord({ holderIdentity: 'me', leaseDurationSeconds: 15, leaseTransitions: 2 }, new Date(T0));
    expect(r.holderIdentity).toBeUndefined();
    expect(r.leaseDurationSeconds).toBe(1);
    expect(r.leaseTransitions).toBe(2);
    expect(heldByOther(r, T0, T0, 'someone')).toBe(false);
  });
});

describe('timing', () => {
  it('the renew deadline passes exactly at renewDeadline after the last renewal', () => {
    expect(renewDeadlinePassed(T0, T0 + 9_999, 10_000)).toBe(false);
    expect(renewDeadlinePassed(T0, T0 + 10_000, 10_000)).toBe(true);
  });

  it('accepts client-go\'s defaults and rejects timings where a leader could act on an expired lease', () => {
    expect(() => validateTiming(DEFAULT_TIMING)).not.toThrow();
    expect(() => validateTiming({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toThrow(/leaseDuration/);
    expect(() => validateTiming({ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(/renewDeadline/);
  });
});
