import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidInputError } from '../../task-runner/errors.ts';
import { TASK_NAME_PATTERN } from '../../crds/schema.ts';
import { describeTask, loadRegistry } from '../../task-runner/registry.ts';
import { validateTask } from '../../task-runner/task-definition.ts';
import { builtinTasks } from '../../task-runner/tasks/index.ts';

const valid = () => ({
  name: 'sync.example-task',
  family: 'sync',
  description: 'An example',
  params: z.strictObject({ limit: z.int().min(1).default(10) }),
  defaults: { schedule: '0 * * * *', retry: { maxRetries: 3, delaySeconds: 300, backoff: 'Fixed' }, timeoutSeconds: 600, softTimeoutSeconds: 540 },
  needs: {},
  run: async () => undefined,
});

const dir = mkdtempSync(join(tmpdir(), 'runner-registry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function plugin(name: string, source: string): string {
  const file = join(dir, name);
  writeFileSync(file, source);
  return file;
}
const pluginTask = (name: string) => `({ defineTask, z }) => defineTask({
  name: '${name}', family: '${name.split('.')[0]}', description: 'plugin task',
  params: z.strictObject({}),
  defaults: { schedule: '*/5 * * * *', retry: { maxRetries: 1, delaySeconds: 30, backoff: 'Exponential' }, timeoutSeconds: 60, softTimeoutSeconds: 50 },
  needs: { redis: true },
  async run() {},
})`;

describe('validateTask', () => {
  it('accepts a well-formed task and returns it unchanged', () => {
    const task = valid();
    expect(validateTask(task, 'test')).toBe(task);
  });

  it.each([
    ['a name without family', { name: 'example' }, /name: must be <family>.<task>/],
    ['an unknown family', { name: 'chores.sweep', family: 'chores' }, /family: Invalid option/],
    ['a name outside its family', { name: 'email.example-task' }, /name: must start with its family/],
    ['upper case in the name', { name: 'sync.ExampleTask' }, /name: must be <family>.<task>/],
    ['a name of 64 characters (a label value holds 63)', { name: `sync.${'x'.repeat(59)}` }, /name: Too big: expected string to have <=63 characters/],
    ['params that are not a zod schema', { params: { limit: 'number' } }, /params: must be a zod schema/],
    ['no run function', { run: 'go' }, /run: must be a function/],
    ['a schedule with six fields', { defaults: { ...valid().defaults, schedule: '0 0 * * * *' } }, /defaults.schedule: /],
    ['a day-of-week of 7', { defaults: { ...valid().defaults, schedule: '0 4 * * 7' } }, /defaults.schedule: /],
    ['a soft timeout not below the hard one', { defaults: { ...valid().defaults, softTimeoutSeconds: 600 } }, /softTimeoutSeconds: must be less than timeoutSeconds/],
    ['an unknown backoff', { defaults: { ...valid().defaults, retry: { maxRetries: 1, delaySeconds: 1, backoff: 'Linear' } } }, /defaults.retry.backoff/],
    ['an unknown need', { needs: { smtp: true } }, /needs: Unrecognized key: "smtp"/],
  ])('refuses %s', (_what, change, message) => {
    const candidate = { ...valid(), ...change };
    expect(() => validateTask(candidate, 'test')).toThrow(InvalidInputError);
    expect(() => validateTask(candidate, 'test')).toThrow(message);
  });

  it('refuses params that cannot be published as JSON Schema', () => {
    const candidate = { ...valid(), params: z.object({ when: z.date() }) };
    expect(() => validateTask(candidate, 'plugin x')).toThrow(/task "sync.example-task" from plugin x is invalid: params cannot be expressed as JSON Schema/);
  });
});

describe('loadRegistry', () => {
  it('holds the built-in tasks, sorted by name', async () => {
    const names = (await loadRegistry({})).tasks.map((t) => t.name);
    expect(names).toHaveLength(builtinTasks.length);
    expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b)));
    expect(names).toEqual(expect.arrayContaining(['ai.test-scheduler-connection', 'maintenance.cleanup-old-sessions', 'maintenance.optimize-database']));
  });

  it('keeps the schedules and retry delays of the Celery plan', async () => {
    const registry = await loadRegistry({});
    const defaults = (name: string) => registry.require(name).defaults;
    expect(defaults('ai.test-scheduler-connection')).toMatchObject({ schedule: '*/30 * * * *', retry: { maxRetries: 3, delaySeconds: 60 } });
    expect(defaults('maintenance.cleanup-old-sessions')).toMatchObject({ schedule: '0 4 * * *', retry: { maxRetries: 3, delaySeconds: 600 } });
    expect(defaults('maintenance.optimize-database')).toMatchObject({ schedule: '0 3 * * 0', retry: { maxRetries: 3, delaySeconds: 3600 } });
  });

  it('names the known tasks for an unknown one, and the nearest when it looks like a typo of it', async () => {
    const registry = await loadRegistry({});
    const known = registry.tasks.map((t) => t.name).join(', ');
    expect(() => registry.require('maintenance.vacuum')).toThrow(`unknown task "maintenance.vacuum"; known tasks: ${known}`);
    // One letter dropped, two swapped, a family's plural: each within three edits of a real task.
    expect(() => registry.require('maintenance.cleanup-old-sesions')).toThrow(
      `unknown task "maintenance.cleanup-old-sesions" (did you mean maintenance.cleanup-old-sessions?); known tasks: ${known}`,
    );
    expect(() => registry.require('email.porcess-queue')).toThrow('(did you mean email.process-queue?)');
    expect(() => registry.require('emails.process-queue')).toThrow('(did you mean email.process-queue?)');
    // Six edits away is another name, not a typo.
    expect(() => registry.require('email.process')).toThrow(`unknown task "email.process"; known tasks: ${known}`);
  });

  it('adds plugin tasks: a factory, a list, or a plain task object', async () => {
    const factory = plugin('factory.mjs', `export default ${pluginTask('sync.from-factory')};`);
    const list = plugin('list.mjs', `const make = ${pluginTask('file.listed-one')}; const make2 = ${pluginTask('file.listed-two')};
      export default (toolkit) => [make(toolkit), make2(toolkit)];`);
    const registry = await loadRegistry({ TASK_PLUGINS: `${factory}, ${list}` });
    expect(registry.get('sync.from-factory')?.needs).toEqual({ redis: true });
    expect(registry.tasks.map((t) => t.name)).toContain('file.listed-two');
    expect(registry.tasks).toHaveLength(builtinTasks.length + 3);
  });

  it('accepts plugins as a list, a comma-separated string, relative paths and file: URLs', async () => {
    const file = plugin('relative.mjs', `export default ${pluginTask('email.relative')};`);
    expect((await loadRegistry({ TASK_PLUGINS: ['relative.mjs'] }, { cwd: dir })).get('email.relative')).toBeDefined();
    expect((await loadRegistry({ TASK_PLUGINS: `file://${file}` })).get('email.relative')).toBeDefined();
  });

  it('checks at load what a run relies on, for plugins as for built-ins', async () => {
    const bad = plugin('bad.mjs', `export default ({ z }) => ({ name: 'sync.No_Defaults', family: 'sync', description: 'x', params: {}, needs: { smtp: true } });`);
    await expect(loadRegistry({ TASK_PLUGINS: bad })).rejects.toThrow(
      `task "sync.No_Defaults" from plugin ${bad} is invalid: name: must be <family>.<task> in lowercase kebab-case (${TASK_NAME_PATTERN}); ` +
        'params: must be a zod schema; run: must be a function; needs.smtp: not a known service flag; defaults.softTimeoutSeconds: must be a positive integer',
    );
    const wrongFamily = plugin('wrong-family.mjs', `export default (t) => ({ ...(${pluginTask('email.misfiled')})(t), family: 'sync' });`);
    await expect(loadRegistry({ TASK_PLUGINS: wrongFamily })).rejects.toThrow('task "email.misfiled" from plugin ' + wrongFamily + ' is invalid: name: must start with its family');
  });

  it('validates every rule when the metadata is read (list, describe, the operator)', async () => {
    const badSchedule = plugin('bad-schedule.mjs', `export default (t) => ({ ...(${pluginTask('sync.bad-schedule')})(t), defaults: { schedule: '0 4 * * 7', retry: { maxRetries: 1, delaySeconds: 30, backoff: 'Fixed' }, timeoutSeconds: 60, softTimeoutSeconds: 50 } });`);
    const registry = await loadRegistry({ TASK_PLUGINS: badSchedule });
    expect(registry.require('sync.bad-schedule').name).toBe('sync.bad-schedule');
    expect(() => registry.tasks).toThrow(`task "sync.bad-schedule" from plugin ${badSchedule} is invalid: defaults.schedule: `);
  });

  it('refuses a duplicate name, naming both sources', async () => {
    const dup = plugin('dup.mjs', `export default ${pluginTask('maintenance.cleanup-old-sessions')};`);
    await expect(loadRegistry({ TASK_PLUGINS: dup })).rejects.toThrow(
      `task "maintenance.cleanup-old-sessions" from plugin ${dup} duplicates the one from the built-in tasks`,
    );
  });

  it('reports a plugin that cannot be loaded, or exports nothing', async () => {
    await expect(loadRegistry({ TASK_PLUGINS: join(dir, 'missing.mjs') })).rejects.toThrow(/task plugin .*missing\.mjs could not be loaded: Cannot find module/);
    const empty = plugin('empty.mjs', 'export const x = 1;');
    await expect(loadRegistry({ TASK_PLUGINS: empty })).rejects.toThrow(/has no default export/);
    const throwing = plugin('throwing.mjs', 'export default () => { throw new Error("no API key"); };');
    await expect(loadRegistry({ TASK_PLUGINS: throwing })).rejects.toThrow(/failed in its factory: no API key/);
  });
});

describe('describeTask', () => {
  it('gives the metadata the operator needs, with the params as JSON Schema', () => {
    const description = describeTask(validateTask(valid(), 'test'));
    expect(description).toEqual({
      name: 'sync.example-task',
      family: 'sync',
      description: 'An example',
      schedule: '0 * * * *',
      retry: { maxRetries: 3, delaySeconds: 300, backoff: 'Fixed' },
      timeoutSeconds: 600,
      softTimeoutSeconds: 540,
      needs: { postgres: false, redis: false },
      params: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: { limit: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: 10 } },
        additionalProperties: false,
      },
    });
  });
});
