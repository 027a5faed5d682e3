import { describe, expect, it } from 'vitest';
import { configSchema, parseConfig, parsePartialConfig, requireServices, requireSettings } from '../../task-runner/config.ts';
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

describe("the tasks' settings", () => {
  it('are optional, with the file roots an empty list', () => {
    const config = parseConfig({});
    expect(config.BGTASK_FILE_ROOTS).toEqual([]);
    for (const name of ['SMTP_URL', 'EMAIL_FROM', 'NOTION_BASE_URL', 'LLM_BASE_URL', 'LLM_API_KEY', 'BGTASK_TEMP_ROOTS', 'BGTASK_BACKUP_DIR', 'BGTASK_USER_DATA_ROOT', 'BGTASK_LOG_DIR'] as const) {
      expect(config[name], name).toBeUndefined();
    }
  });

  it('are read typed: URLs, addresses, absolute paths and ":"-separated path lists', () => {
    const config = parseConfig({
      SMTP_URL: 'smtps://mailer:pw@smtp.example.com:465',
      EMAIL_FROM: 'Assistant <assistant@example.com>',
      NOTION_BASE_URL: 'http://127.0.0.1:9000/',
      LLM_BASE_URL: 'https://llm.example.com/v1',
      BGTASK_FILE_ROOTS: '/data/tmp: /var/cache/app:',
      BGTASK_TEMP_ROOTS: '/data/tmp',
      BGTASK_BACKUP_DIR: '/data/backups',
      BGTASK_USER_DATA_ROOT: '/data/users',
      BGTASK_LOG_DIR: '/var/log/app',
    });
    expect(config).toMatchObject({
      SMTP_URL: 'smtps://mailer:pw@smtp.example.com:465',
      EMAIL_FROM: 'Assistant <assistant@example.com>',
      NOTION_BASE_URL: 'http://127.0.0.1:9000/',
      BGTASK_FILE_ROOTS: ['/data/tmp', '/var/cache/app'],
      BGTASK_TEMP_ROOTS: ['/data/tmp'],
      BGTASK_BACKUP_DIR: '/data/backups',
      BGTASK_USER_DATA_ROOT: '/data/users',
      BGTASK_LOG_DIR: '/var/log/app',
    });
  });

  it.each([
    ['SMTP_URL', 'http://mailer:hunter2@smtp.example.com', /^invalid configuration: SMTP_URL: must be an smtp:\/\/ or smtps:\/\/ URL$/],
    ['SMTP_URL', 'not a url hunter2', /^invalid configuration: SMTP_URL: must be an smtp:\/\/ or smtps:\/\/ URL$/],
    ['EMAIL_FROM', 'h2', /^invalid configuration: EMAIL_FROM: /],
    ['NOTION_BASE_URL', 'ftp://hunter2@notion.example.com', /^invalid configuration: NOTION_BASE_URL: must be an http\(s\):\/\/ URL$/],
    ['BGTASK_FILE_ROOTS', '/data:hunter2/relative', /^invalid configuration: BGTASK_FILE_ROOTS\.1: every path must be absolute$/],
    ['BGTASK_TEMP_ROOTS', 'hunter2', /^invalid configuration: BGTASK_TEMP_ROOTS\.0: every path must be absolute$/],
    ['BGTASK_BACKUP_DIR', 'hunter2/backups', /^invalid configuration: BGTASK_BACKUP_DIR: must be an absolute path$/],
    ['BGTASK_USER_DATA_ROOT', './hunter2', /^invalid configuration: BGTASK_USER_DATA_ROOT: must be an absolute path$/],
    ['BGTASK_LOG_DIR', 'hunter2', /^invalid configuration: BGTASK_LOG_DIR: must be an absolute path$/],
  ])('refuse a malformed %s in one line naming it, without its value', (name, value, reason) => {
    let error: unknown;
    try {
      parseConfig({ [name]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidInputError);
    const message = (error as Error).message;
    expect(message).toMatch(reason);
    expect(message).not.toContain('\n');
    expect(message).not.toContain('hunter2');
  });

  it('keep no variable the schema does not declare (a plugin reads those with ctx.variable)', () => {
    expect(parseConfig({ NOTION_TOKEN: 'secret_1', MY_PLUGIN_SETTING: 'x' })).not.toHaveProperty('MY_PLUGIN_SETTING');
    expect(Object.keys(configSchema.shape)).not.toContain('NOTION_TOKEN');
  });
});

describe('requireSettings', () => {
  const none = parseConfig({});
  const mail = parseConfig({ SMTP_URL: 'smtp://smtp.example.com', BGTASK_BACKUP_DIR: '/data/backups' });

  it('hands back the configuration when the settings are set', () => {
    const config = requireSettings(mail, ['SMTP_URL', 'BGTASK_BACKUP_DIR'], 'email.process-queue');
    expect(config.SMTP_URL.startsWith('smtp://')).toBe(true); // typed as set: no undefined check needed
    expect(config).toBe(mail);
  });

  it('names every missing one, for the task that needs them (exit 2)', () => {
    expect(() => requireSettings(none, ['SMTP_URL'], 'email.process-queue')).toThrow(
      new InvalidInputError('invalid configuration: email.process-queue requires SMTP_URL, not set'),
    );
    expect(() => requireSettings(mail, ['BGTASK_BACKUP_DIR', 'BGTASK_USER_DATA_ROOT', 'LLM_BASE_URL'], 'task t')).toThrow(
      new InvalidInputError('invalid configuration: task t requires BGTASK_USER_DATA_ROOT and LLM_BASE_URL, not set'),
    );
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
