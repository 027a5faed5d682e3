import { describe, expect, it } from 'vitest';
import {
  BucketRateLimiter,
  ItemExponentialRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from '../../operator/kube/rate-limiter.ts';
import { backoffDelay } from '../../operator/kube/sleep.ts';

describe('ItemExponentialRateLimiter', () => {
  it('doubles from 5 ms per failure and caps at 1000 s, per key', () => {
    const l = new ItemExponentialRateLimiter(5, 1_000_000);
    expect([l.when('a'), l.when('a'), l.when('a'), l.when('a')]).toEqual([5, 10, 20, 40]);
    expect(l.when('b')).toBe(5);
    for (let i = 0; i < 100; i++) l.when('a');
    expect(l.when('a')).toBe(1_000_000);
    expect(l.numRequeues('a')).toBe(105);
  });

  it('starts over after forget', () => {
    const l = new ItemExponentialRateLimiter(5, 1_000_000);
    l.when('a');
    l.when('a');
    l.forget('a');
    expect(l.numRequeues('a')).toBe(0);
    expect(l.when('a')).toBe(5);
  });
});

describe('BucketRateLimiter', () => {
  it('lets a burst through, then spaces calls at the rate, and refills over time', () => {
    let now = 0;
    const l = new BucketRateLimiter(10, 3, () => now);
    expect([l.when('a'), l.when('b'), l.when('c')]).toEqual([0, 0, 0]);
    expect(l.when('d')).toBe(100);
    expect(l.when('e')).toBe(200);
    now += 1000; // 10 tokens' worth, capped at the burst of 3 after paying back 2
    expect(l.when('f')).toBe(0);
  });
});

describe('MaxOfRateLimiter / the default', () => {
  it('takes the longest delay of its limiters and counts the attempt in each', () => {
    let now = 0;
    const item = new ItemExponentialRateLimiter(5, 1_000_000);
    const bucket = new BucketRateLimiter(1, 1, () => now);
    const l = new MaxOfRateLimiter(item, bucket);
    expect(l.when('a')).toBe(5); // bucket has its one token
    expect(l.when('a')).toBe(1000); // bucket empty: 1 s beats 10 ms
    expect(item.numRequeues('a')).toBe(2);
    l.forget('a');
    expect(l.numRequeues('a')).toBe(0);
  });

  it('the default starts at 5 ms like client-go', () => {
    expect(defaultControllerRateLimiter().when('x')).toBe(5);
  });
});

describe('backoffDelay', () => {
  it('doubles from the initial delay, caps, and spreads by the jitter', () => {
    expect(backoffDelay(1, 800, 30_000, 0)).toBe(800);
    expect(backoffDelay(2, 800, 30_000, 0)).toBe(1600);
    expect(backoffDelay(10, 800, 30_000, 0)).toBe(30_000);
    expect(backoffDelay(1, 1000, 30_000, 0.2, () => 0)).toBe(800);
    expect(backoffDelay(1, 1000, 30_000, 0.2, () => 1)).toBe(1200);
  });
});
