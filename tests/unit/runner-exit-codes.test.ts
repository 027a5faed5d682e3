import { describe, expect, it } from 'vitest';
import { RUN_OUTCOMES, type RunOutcome } from '../../crds/schema.ts';
import { InvalidInputError, RunAborted } from '../../task-runner/errors.ts';
import { EXIT_CODES, exitCodeFor, outcomeForError } from '../../task-runner/exit-codes.ts';

describe('exit codes', () => {
  it.each<[RunOutcome, number]>([
    ['Succeeded', 0],
    ['Failed', 1],
    ['InvalidInput', 2],
    ['Interrupted', 143],
    ['TimedOut', 143],
    ['OOMKilled', 137],
  ])('%s exits %i', (outcome, code) => {
    expect(exitCodeFor(outcome)).toBe(code);
  });

  it('covers every outcome of the API', () => {
    for (const outcome of RUN_OUTCOMES) expect(Object.values(EXIT_CODES)).toContain(exitCodeFor(outcome));
  });
});

describe('outcomeForError', () => {
  const live = new AbortController().signal;

  it('treats invalid input as never retryable', () => {
    expect(outcomeForError(new InvalidInputError('bad params'), live)).toBe('InvalidInput');
  });

  it('treats any other error as a retryable failure', () => {
    expect(outcomeForError(new Error('connect ECONNREFUSED'), live)).toBe('Failed');
    expect(outcomeForError('a string thrown', live)).toBe('Failed');
  });

  it('reports an error after SIGTERM as Interrupted and after the soft timeout as TimedOut', () => {
    const term = new AbortController();
    term.abort(new RunAborted('Interrupted', 'received SIGTERM'));
    expect(outcomeForError(term.signal.reason, term.signal)).toBe('Interrupted');
    expect(outcomeForError(new Error('query canceled'), term.signal)).toBe('Interrupted');

    const soft = new AbortController();
    soft.abort(new RunAborted('TimedOut', 'soft timeout of 5s reached'));
    expect(outcomeForError(soft.signal.reason, soft.signal)).toBe('TimedOut');
  });

  it('keeps invalid input invalid even once aborted', () => {
    const term = new AbortController();
    term.abort(new RunAborted('Interrupted', 'received SIGTERM'));
    expect(outcomeForError(new InvalidInputError('bad'), term.signal)).toBe('InvalidInput');
  });
});
