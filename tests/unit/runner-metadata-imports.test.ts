// The operator imports the task registry for metadata. Loading it, and describing every task,
// must not load any client library a task uses at run time (nor the runner's own machinery).
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const registry = pathToFileURL(resolve(import.meta.dirname, '../../task-runner/registry.ts')).href;

function modulesLoadedBy(code: string): string[] {
  const script = `
    import { registerHooks } from 'node:module';
    const seen = new Set();
    registerHooks({ load(url, context, next) { seen.add(url); return next(url, context); } });
    ${code}
    process.stdout.write(JSON.stringify([...seen]));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`node exited ${result.status}: ${result.stderr}`);
  return JSON.parse(result.stdout) as string[];
}

describe('task metadata', () => {
  it('loads without pg, ioredis, pino, commander, node-pg-migrate, the Kubernetes client or node:https', () => {
    const loaded = modulesLoadedBy(`
      const { loadRegistry, describeTask } = await import(${JSON.stringify(registry)});
      const described = (await loadRegistry({})).tasks.map(describeTask);
      if (!described.some((t) => t.name === 'maintenance.cleanup-old-sessions')) throw new Error('the built-in tasks are missing');`);
    expect(loaded.some((url) => url.includes('/node_modules/zod/'))).toBe(true); // the probe sees npm modules
    const heavy = loaded.filter((url) =>
      /\/node_modules\/(pg|pg-pool|ioredis|pino|commander|node-pg-migrate|@kubernetes)\//.test(url) || url === 'node:https',
    );
    expect(heavy).toEqual([]);
  });
});
