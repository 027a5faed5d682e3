/**
 * Applies the SQL migrations in migrations/ with node-pg-migrate. Idempotent: applied files
 * are recorded in pgmigrations. Two runs at once are safe: each takes node-pg-migrate's
 * advisory lock in "wait" mode (its default, "fail", would make the second run an error),
 * so the second waits, then finds nothing to do. Pending files apply in one transaction.
 */
import { dirname, join } from 'node:path';
import type { RunnerConfig } from './config.ts';
import { InvalidInputError } from './errors.ts';
import { createLogger } from './logger.ts';

/** Beside the entry script: dist/migrations in the bundle and the image, task-runner/migrations from source. */
function defaultMigrationsDir(): string {
  return join(dirname(process.argv[1] ?? '.'), 'migrations');
}

export async function migrate(config: RunnerConfig): Promise<string[]> {
  if (!config.DATABASE_URL) throw new InvalidInputError('invalid configuration: migrate requires DATABASE_URL, not set');
  const log = createLogger(config.LOG_LEVEL).child({ command: 'migrate' });
  const dir = config.BGTASK_MIGRATIONS_DIR ?? defaultMigrationsDir();
  const { runner } = await import('node-pg-migrate');
  try {
    const applied = await runner({
      databaseUrl: config.DATABASE_URL,
      dir,
      direction: 'up',
      migrationsTable: 'pgmigrations',
      singleTransaction: true,
      checkOrder: true,
      advisoryLockMode: 'wait',
      log: (msg: string) => log.info(msg),
    });
    const names = applied.map((m) => m.name);
    log.info({ applied: names, dir }, names.length > 0 ? 'migrations applied' : 'database already up to date');
    return names;
  } catch (err) {
    throw new Error(`migrating the database with ${dir} failed`, { cause: err });
  }
}
