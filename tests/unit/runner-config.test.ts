import { describe, expect, it } from 'vitest';
import { parseConfig, parsePartialConfig, requireServices } from '../../task-runner/config.ts';
import { InvalidInputError } from '../../task-runner/errors.ts';

describe('parseConfig', () => {
  it('needs nothing: every variable has a default or is optional', () => {
    const config = parseConfig({});
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.TASK_PLUGINS).toEqual([]);
    expect(config.BGTASK_TRIGGER).toBe('Manual');
    expect(config.BGTASK_ATTEMPT).toBe(1);
    expect(config.DATABASE_URL).toBeUndefined();
  });

  it('reads the run identity the operator passes', () => {
    const config = parseConfig({
      BGTASK_NAME: 'nightly-cleanup',
      BGTASK_NAMESPACE: 'assistant',
      BGTASK_RUN_ID: 'nightly-cleanup-29123456',
      BGTASK_TRIGGER: 'Retry',
      BGTASK_ATTEMPT: '3',
    });
    expect(config).toMatchObject({ BGTASK_NAME: 'nightly-cleanup', BGTASK_NAMESPACE: 'assistant', BGTASK_TRIGGER: 'Retry', BGTASK_ATTEMPT: 3 });
  });

  it('splits TASK_PLUGINS on commas and trims', () => {
    expect(parseConfig({ TASK_PLUGINS: ' ./a.mjs, /opt/b.mjs ,,' }).TASK_PLUGINS).toEqual(['./a.mjs', '/opt/b.mjs']);
  });

  it('treats an empty variable as unset', () => {
    expect(parseConfig({ DATABASE_URL: '', BGTASK_ATTEMPT: '' }).DATABASE_URL).toBeUndefined();
  });

  it('names every invalid variable without echoing its value', () => {
    const secret = 'mysql://root:hunter2@db/app';
    let error: unknown;
    try {
      parseConfig({ DATABASE_URL: secret, BGTASK_TRIGGER: 'Cron', BGTASK_ATTEMPT: '0', LOG_LEVEL: 'loud' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidInputError);
    const message = (error as Error).message;
    expect(message).toMatch(/DATABASE_URL: must be a postgres:\/\/ URL/);
    expect(message).toMatch(/BGTASK_TRIGGER: /);
    expect(message).toMatch(/BGTASK_ATTEMPT: /);
    expect(message).toMatch(/LOG_LEVEL: /);
    expect(message).not.toContain('hunter2');
  });

  it('refuses a BackgroundTask name that is not a Kubernetes name', () => {
    expect(() => parseConfig({ BGTASK_NAME: 'Nightly_Cleanup' })).toThrow(/BGTASK_NAME: must be a Kubernetes object name/);
  });
});

describe('requireServices', () => {
  const none = parseConfig({});
  const both = parseConfig({ DATABASE_URL: 'postgres://u:p@db:5432/app', REDIS_URL: 'redis://cache:6379' });

  it('requires only what the task needs', () => {
    expect(() => requireServices(none, {}, 'task x')).not.toThrow();
    expect(() => requireServices(both, { postgres: true, redis: true }, 'task x')).not.toThrow();
  });

  it('names the missing variables', () => {
    expect(() => requireServices(none, { postgres: true }, 'task maintenance.optimize-database')).toThrow(
      new InvalidInputError('invalid configuration: task maintenance.optimize-database requires DATABASE_URL (needs.postgres), not set'),
    );
    expect(() => requireServices(none, { postgres: true, redis: true }, 'task t')).toThrow(/DATABASE_URL \(needs.postgres\) and REDIS_URL \(needs.redis\)/);
  });
});

describe('parsePartialConfig', () => {
  const env = { BGTASK_RUN_ID: 'r-1', BGTASK_TRIGGER: 'Retry', DATABASE_URL: 'mysql://nope' };

  it('parses the variables asked for, whatever the others hold', () => {
    expect(parsePartialConfig(env, ['BGTASK_RUN_ID', 'BGTASK_TRIGGER', 'BGTASK_ATTEMPT'])).toEqual({
      BGTASK_RUN_ID: 'r-1',
      BGTASK_TRIGGER: 'Retry',
      BGTASK_ATTEMPT: 1,
    });
  });

  it('is undefined when one of them is invalid', () => {
    expect(parsePartialConfig(env, ['DATABASE_URL'])).toBeUndefined();
  });
});
