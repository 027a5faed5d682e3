/**
 * The task registry: the built-in tasks plus plugin modules named in TASK_PLUGINS, each
 * validated the same way. It holds metadata only (task.ts imports nothing at run time), so
 * the operator loads it with the same TASK_PLUGINS to know every task the runner knows.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as z from 'zod';
import { FAMILIES, TASK_NAME_PATTERN } from '../crds/constants.ts';
import { InvalidInputError, describeError } from './errors.ts';
import type { validateTask as ValidateTask } from './task-definition.ts';
import type { PluginToolkit } from './plugin-toolkit.ts';
import type { AnyTask } from './task.ts';
import { builtinTasks } from './tasks/index.ts';
import { unknownTaskMessage } from './unknown-task.ts';

export const TASK_NAME = new RegExp(TASK_NAME_PATTERN);

export function isZodSchema(value: unknown): value is z.ZodType {
  return typeof value === 'object' && value !== null && '_zod' in value && typeof (value as z.ZodType).safeParse === 'function';
}

const NEEDS = new Set(['postgres', 'redis']);

/**
 * What a run relies on, checked for every task as it loads: identity (name pattern, family,
 * no duplicate — see loadRegistry), a params schema, a run function, its needs and its soft
 * timeout. Plain code, not zod: it runs at every start, and start-up time is benchmarked. The
 * rest (the defaults against the BackgroundTask spec's rules, params as JSON Schema) is
 * validateTask's, for whoever reads the metadata (list, describe, the operator).
 */
function checkRunnable(candidate: unknown, source: string): AnyTask {
  if (typeof candidate !== 'object' || candidate === null) throw new InvalidInputError(`a task from ${source} is not an object`);
  const task = candidate as Partial<Record<keyof AnyTask, unknown>>;
  const problems: string[] = [];
  if (typeof task.name !== 'string' || task.name.length > 100 || !TASK_NAME.test(task.name)) {
    problems.push(`name: must be <family>.<task> in lowercase kebab-case (${TASK_NAME_PATTERN})`);
  } else if (!task.name.startsWith(`${String(task.family)}.`)) {
    problems.push('name: must start with its family');
  }
  if (!(FAMILIES as readonly unknown[]).includes(task.family)) problems.push(`family: must be one of ${FAMILIES.join(', ')}`);
  if (!isZodSchema(task.params)) problems.push('params: must be a zod schema');
  if (typeof task.run !== 'function') problems.push('run: must be a function');
  const needs = task.needs as Record<string, unknown> | undefined;
  if (typeof needs !== 'object' || needs === null) problems.push('needs: must be an object');
  else for (const [key, value] of Object.entries(needs)) if (!NEEDS.has(key) || typeof value !== 'boolean') problems.push(`needs.${key}: not a known service flag`);
  const soft = (task.defaults as { softTimeoutSeconds?: unknown } | undefined)?.softTimeoutSeconds;
  if (!Number.isInteger(soft) || (soft as number) <= 0) problems.push('defaults.softTimeoutSeconds: must be a positive integer');
  if (problems.length > 0) throw new InvalidInputError(`${describeCandidate(candidate, source)} is invalid: ${problems.join('; ')}`);
  return candidate as AnyTask;
}

export function describeCandidate(candidate: unknown, source: string): string {
  const label = (candidate as { name?: unknown } | null)?.name;
  return typeof label === 'string' ? `task "${label}" from ${source}` : `a task from ${source}`;
}

export interface Registry {
  /** Every task, sorted by name, each through validateTask (once): what list, describe and the operator read. */
  readonly tasks: readonly AnyTask[];
  get(name: string): AnyTask | undefined;
  /** The task to run, or an InvalidInputError naming the known tasks. */
  require(name: string): AnyTask;
}

function moduleUrl(spec: string, cwd: string): string {
  // A scheme (file:, data:, node:) is a URL; anything else is a path from the working directory.
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec) && !/^[a-z]:[\\/]/i.test(spec)) return spec;
  return pathToFileURL(isAbsolute(spec) ? spec : resolve(cwd, spec)).href;
}

async function loadPlugin(spec: string, cwd: string): Promise<unknown[]> {
  let mod: { default?: unknown };
  try {
    mod = (await import(moduleUrl(spec, cwd))) as { default?: unknown };
  } catch (err) {
    throw new InvalidInputError(`task plugin ${spec} could not be loaded: ${describeError(err)}`, { cause: err });
  }
  let exported = mod.default;
  if (exported === undefined) throw new InvalidInputError(`task plugin ${spec} has no default export (a task, a list of tasks, or a factory)`);
  // A plugin exports a task, a list of tasks, or a factory given the runner's toolkit (plugin-toolkit.ts).
  if (typeof exported === 'function') {
    const { toolkit } = await import('./plugin-toolkit.ts');
    try {
      exported = await (exported as (t: PluginToolkit) => unknown)(toolkit);
    } catch (err) {
      throw new InvalidInputError(`task plugin ${spec} failed in its factory: ${describeError(err)}`, { cause: err });
    }
  }
  return Array.isArray(exported) ? exported : [exported];
}

function pluginList(value: string | readonly string[] | undefined): readonly string[] {
  if (value === undefined) return [];
  return typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value;
}

export async function loadRegistry(
  env: { TASK_PLUGINS?: string | readonly string[] | undefined },
  options: { cwd?: string; forRunOnly?: boolean } = {},
): Promise<Registry> {
  const cwd = options.cwd ?? process.cwd();
  // The full check builds the BackgroundTask spec's zod schema (~30 ms): a run, which only needs
  // require(), skips loading it; list, describe and the operator get it.
  const validateTask: typeof ValidateTask | undefined = options.forRunOnly
    ? undefined
    : (await import('./task-definition.ts')).validateTask;
  const byName = new Map<string, { task: AnyTask; source: string }>();
  const add = (candidate: unknown, source: string) => {
    const task = checkRunnable(candidate, source);
    const existing = byName.get(task.name);
    if (existing) throw new InvalidInputError(`task "${task.name}" from ${source} duplicates the one from ${existing.source}`);
    byName.set(task.name, { task, source });
  };
  for (const task of builtinTasks) add(task, 'the built-in tasks');
  for (const spec of pluginList(env.TASK_PLUGINS)) {
    for (const candidate of await loadPlugin(spec, cwd)) add(candidate, `plugin ${spec}`);
  }
  const names = [...byName.keys()].sort((a, b) => a.localeCompare(b));
  let validated: readonly AnyTask[] | undefined;
  return {
    get tasks() {
      if (!validateTask) throw new Error('this registry was loaded for a run only: load it without forRunOnly to read every task');
      validated ??= names.map((name) => {
        const { task, source } = byName.get(name)!;
        return validateTask(task, source);
      });
      return validated;
    },
    get: (name) => byName.get(name)?.task,
    require(name) {
      const found = byName.get(name)?.task;
      if (!found) throw new InvalidInputError(unknownTaskMessage(name, names));
      return found;
    },
  };
}

export interface TaskDescription {
  name: string;
  family: string;
  description: string;
  schedule: string;
  retry: AnyTask['defaults']['retry'];
  timeoutSeconds: number;
  softTimeoutSeconds: number;
  needs: { postgres: boolean; redis: boolean };
  params: Record<string, unknown>;
}

/** A task's metadata as plain JSON: what `describe` prints and what the operator reads. */
export function describeTask(task: AnyTask): TaskDescription {
  return {
    name: task.name,
    family: task.family,
    description: task.description,
    schedule: task.defaults.schedule,
    retry: { ...task.defaults.retry },
    timeoutSeconds: task.defaults.timeoutSeconds,
    softTimeoutSeconds: task.defaults.softTimeoutSeconds,
    needs: { postgres: task.needs.postgres === true, redis: task.needs.redis === true },
    params: z.toJSONSchema(task.params, { io: 'input' }) as Record<string, unknown>,
  };
}
