import { describe, expect, it } from 'vitest';
import { describeError } from '../../task-runner/errors.ts';

describe('describeError', () => {
  it('joins an error with its causes', () => {
    const root = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    expect(describeError(new Error('postgres query failed', { cause: root }))).toBe('postgres query failed: connect ECONNREFUSED 127.0.0.1:5432');
  });

  it('lists the inner errors of an AggregateError with no message', () => {
    const err = new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')], '');
    expect(describeError(err)).toBe('connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
  });

  it('drops a cause that only repeats its parent', () => {
    const inner = new Error('timeout');
    expect(describeError(new Error('request failed: timeout', { cause: inner }))).toBe('request failed: timeout');
  });

  it('stops on a cause cycle', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(describeError(b)).toBe('b: a');
  });

  it('describes non-errors', () => {
    expect(describeError('plain')).toBe('plain');
  });
});
