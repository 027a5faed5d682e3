import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../task-runner/errors.ts';
import { parseParams } from '../../task-runner/params.ts';
import testSchedulerConnection from '../../task-runner/tasks/ai/test-scheduler-connection.ts';
import cleanupOldSessions from '../../task-runner/tasks/maintenance/cleanup-old-sessions.ts';
import optimizeDatabase from '../../task-runner/tasks/maintenance/optimize-database.ts';

function rejection(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidInputError) return err;
    throw err;
  }
  throw new Error('expected an InvalidInputError');
}

describe('params', () => {
  it('applies the defaults when no params are given', () => {
    expect(parseParams(cleanupOldSessions, undefined)).toEqual({ batchSize: 1000, maxBatches: 500 });
    expect(parseParams(optimizeDatabase, undefined)).toEqual({
      deadTupleRatio: 0.2,
      minDeadTuples: 1000,
      reindex: false,
      schemas: ['public'],
      maxTables: 50,
      dropInvalidIndexes: true,
      reportUnusedIndexes: true,
      unusedIndexMinBytes: 1024 * 1024,
    });
    expect(parseParams(testSchedulerConnection, '{}')).toEqual({ timeoutMs: 5000, optional: [] });
  });

  it('keeps given values', () => {
    expect(parseParams(cleanupOldSessions, '{"batchSize":250,"maxBatches":4}')).toEqual({ batchSize: 250, maxBatches: 4 });
    expect(parseParams(testSchedulerConnection, '{"optional":["llm","kubernetes"]}')).toMatchObject({ optional: ['llm', 'kubernetes'] });
  });

  it('names the field and the reason of every problem', () => {
    const err = rejection(() => parseParams(cleanupOldSessions, '{"batchSize":0,"maxBatches":"many"}'));
    expect(err.message).toContain('invalid params for maintenance.cleanup-old-sessions');
    expect(err.message).toMatch(/batchSize: Too small: expected number to be >=1/);
    expect(err.message).toMatch(/maxBatches: Invalid input: expected number, received string/);
  });

  it('names a nested field by its path', () => {
    const err = rejection(() => parseParams(testSchedulerConnection, '{"optional":["postgres","smtp"]}'));
    expect(err.message).toMatch(/optional\.1: Invalid option/);
  });

  it('refuses unknown keys (a typo must not be silently ignored), naming the param a typo looks like', () => {
    expect(rejection(() => parseParams(optimizeDatabase, '{"deadTupleRatoi":0.5}')).message).toBe(
      'invalid params for maintenance.optimize-database: (params): Unrecognized key: "deadTupleRatoi"; did you mean deadTupleRatio?',
    );
    expect(rejection(() => parseParams(cleanupOldSessions, '{"batchsize":10,"colour":"red","maxbatch":2}')).message).toBe(
      'invalid params for maintenance.cleanup-old-sessions: (params): Unrecognized keys: "batchsize", "colour", "maxbatch"; ' +
        'did you mean batchSize (for "batchsize"), maxBatches (for "maxbatch")?',
    );
    expect(rejection(() => parseParams(cleanupOldSessions, '{"colour":"red"}')).message).toBe(
      'invalid params for maintenance.cleanup-old-sessions: (params): Unrecognized key: "colour"',
    );
  });

  it('refuses params that are not JSON, or not an object', () => {
    expect(rejection(() => parseParams(cleanupOldSessions, '{batchSize: 5}')).message).toMatch(/not valid JSON/);
    expect(rejection(() => parseParams(cleanupOldSessions, '[1]')).message).toMatch(/\(params\): Invalid input: expected object, received array/);
  });

  it('refuses a ratio outside 0..1', () => {
    expect(rejection(() => parseParams(optimizeDatabase, '{"deadTupleRatio":1.5}')).message).toMatch(/deadTupleRatio: Too big/);
  });
});
