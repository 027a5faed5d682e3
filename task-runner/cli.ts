/**
 * task-runner run <task> [--params <json>] [--dry-run] | list [--json] | describe <task> | migrate
 * Returns the exit code (see exit-codes.ts); the entry point exits with it.
 */
import { Command, CommanderError } from 'commander';
import { parseConfig } from './config.ts';
import { InvalidInputError, describeError } from './errors.ts';
import { EXIT_CODES } from './exit-codes.ts';
import { describeTask, loadRegistry } from './registry.ts';
import { runOnce } from './runner.ts';

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let exitCode: number = EXIT_CODES.succeeded;
  const program = new Command('task-runner')
    .description('Runs one background task of the personal assistant and reports its result')
    .exitOverride()
    .showHelpAfterError();

  program
    .command('run')
    .description('run one task once; exits 0 succeeded, 1 failed (retryable), 2 invalid input, 143 interrupted')
    .argument('<task>', 'task name, e.g. maintenance.cleanup-old-sessions')
    .option('--params <json>', 'task params as a JSON object')
    .option('--dry-run', 'report what would change and change nothing', false)
    .action(async (taskName: string, options: { params?: string; dryRun: boolean }) => {
      exitCode = await runOnce({ taskName, params: options.params, dryRun: options.dryRun }, env);
    });

  program
    .command('list')
    .description('list the known tasks')
    .option('--json', 'print every task description as JSON', false)
    .action(async (options: { json: boolean }) => {
      const registry = await loadRegistry(parseConfig(env));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(registry.tasks.map(describeTask), null, 2)}\n`);
        return;
      }
      const rows = registry.tasks.map((t) => [t.name, t.defaults.schedule, t.description]);
      const width = (i: number) => Math.max(...rows.map((r) => r[i]!.length));
      for (const [name, schedule, description] of rows) {
        process.stdout.write(`${name!.padEnd(width(0))}  ${schedule!.padEnd(width(1))}  ${description}\n`);
      }
    });

  program
    .command('describe')
    .description("print a task's metadata and params JSON Schema")
    .argument('<task>', 'task name')
    .action(async (taskName: string) => {
      const registry = await loadRegistry(parseConfig(env));
      // From registry.tasks: fully validated, as the operator reads it; an unknown name fails in require().
      const task = registry.tasks.find((t) => t.name === taskName) ?? registry.require(taskName);
      process.stdout.write(`${JSON.stringify(describeTask(task), null, 2)}\n`);
    });

  program
    .command('migrate')
    .description('apply pending database migrations (idempotent; concurrent runs wait for each other)')
    .action(async () => {
      const { migrate } = await import('./migrate.ts');
      const applied = await migrate(parseConfig(env));
      process.stdout.write(`${JSON.stringify({ applied })}\n`);
    });

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are successes; any usage error is input no retry can fix.
      return err.exitCode === 0 ? EXIT_CODES.succeeded : EXIT_CODES.invalidInput;
    }
    process.stderr.write(`task-runner: ${describeError(err)}\n`);
    return err instanceof InvalidInputError ? EXIT_CODES.invalidInput : EXIT_CODES.failed;
  }
}
