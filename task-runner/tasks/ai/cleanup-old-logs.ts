import * as z from 'zod';
import { describeError } from '../../errors.ts';
import { defineTask } from '../../task.ts';

// One batch is one statement: a short transaction that commits or rolls back whole. The batch is
// chosen once, in a materialized CTE (see maintenance/cleanup-old-sessions.ts for why not `IN (…)`).
const DELETE_BATCH = `
  WITH batch AS MATERIALIZED (
    SELECT run_id FROM task_runs
    WHERE finished_at < $1
    ORDER BY finished_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
  DELETE FROM task_runs r USING batch WHERE r.run_id = batch.run_id`;

/**
 * Rotated log files, never the live one: app.log.1, app.log.2.gz (logrotate's numbered),
 * app.log-20240101[.gz] (its dateext), app.2024-01-01.log[.gz] (date-stamped by the writer).
 */
const ROTATED = /(\.log\.\d+(\.gz)?|\.log-\d{8}(\d{2})?(\.gz)?|[.-]\d{4}-\d{2}-\d{2}(T\d{2}(-\d{2}){0,2})?\.log(\.gz)?)$/;

export default defineTask({
  name: 'ai.cleanup-old-logs',
  family: 'ai',
  description: 'Deletes task_runs older than the retention in batches, and rotated log files older than N days in the log directory',
  params: z.strictObject({
    retentionDays: z.int().min(1).max(3650).default(30).describe('task_runs finished longer ago than this are deleted'),
    batchSize: z.int().min(1).max(50_000).default(1000).describe('rows deleted per batch, each batch its own transaction'),
    maxBatches: z.int().min(1).max(100_000).default(500).describe('batches per run at most; the next run deletes the rest'),
    logDir: z.string().startsWith('/', 'must be an absolute path').optional().describe('directory of rotated log files (else BGTASK_LOG_DIR; none: files are left alone)'),
    logMaxAgeDays: z.int().min(1).max(3650).optional().describe('rotated log files older than this are removed (default: retentionDays)'),
  }),
  defaults: {
    schedule: '0 2 * * *',
    retry: { maxRetries: 3, delaySeconds: 60, backoff: 'Fixed' },
    timeoutSeconds: 1800,
    softTimeoutSeconds: 1500,
  },
  needs: { postgres: true },
  async run(ctx) {
    const p = ctx.params;
    const [{ checkRoots }, { sweepOldFiles }] = await Promise.all([import('../../services/file-roots.ts'), import('../file/sweep-old-files.ts')]);
    const logDir = p.logDir ?? ctx.env.BGTASK_LOG_DIR;
    // Checked before anything is deleted: a log directory outside the allowed roots is refused whole.
    const [root] = logDir ? await checkRoots([logDir], ctx.env.BGTASK_FILE_ROOTS, 'log directory') : [];
    const now = ctx.clock.now().getTime();

    const cutoff = new Date(now - p.retentionDays * 86_400_000);
    if (ctx.dryRun) {
      const { rows } = await ctx.db.query<{ n: string }>('SELECT count(*) AS n FROM task_runs WHERE finished_at < $1', [cutoff]);
      ctx.set('task_runs_to_delete', Number(rows[0]?.n ?? 0));
    } else {
      ctx.count('task_runs_deleted', 0);
      for (let batch = 1; batch <= p.maxBatches; batch++) {
        ctx.signal.throwIfAborted();
        const { rowCount } = await ctx.db.query(DELETE_BATCH, [cutoff, p.batchSize]);
        ctx.count('task_runs_deleted', rowCount ?? 0);
        if ((rowCount ?? 0) < p.batchSize) break;
        if (batch === p.maxBatches) ctx.set('more_pending', true);
      }
    }

    if (!root) {
      ctx.set('log_dir', 'none');
    } else if (!root.real) {
      ctx.log.warn({ logDir: root.given }, 'log directory does not exist; no log files to remove');
      ctx.set('log_dir', 'missing');
    } else {
      // Counted into the summary file by file, not from the sweep's totals: a stop or the soft
      // timeout ends the sweep by throwing, and the run must still report what it removed until then.
      const filesKey = ctx.dryRun ? 'log_files_to_remove' : 'log_files_removed';
      const bytesKey = ctx.dryRun ? 'log_bytes_to_free' : 'log_bytes_freed';
      ctx.count(filesKey, 0);
      ctx.count(bytesKey, 0);
      let firstError: string | undefined;
      const totals = await sweepOldFiles(root.real, {
        cutoffMs: now - (p.logMaxAgeDays ?? p.retentionDays) * 86_400_000,
        dryRun: ctx.dryRun,
        concurrency: 8,
        removeEmptyDirs: false,
        match: (name) => ROTATED.test(name),
        signal: ctx.signal,
        onFile: (path, bytes) => {
          ctx.count(filesKey);
          ctx.count(bytesKey, bytes);
          if (ctx.dryRun) ctx.log.info({ path, bytes }, 'would remove');
        },
        onError: (path, err) => {
          firstError ??= `${path}: ${describeError(err)}`;
          ctx.log.warn({ path, err }, 'could not remove a log file');
        },
      });
      if (totals.errors > 0) throw new Error(`${totals.errors} log files could not be removed; first: ${firstError}`);
    }
    return ctx.dryRun ? 'dry run: nothing deleted' : 'old task runs and rotated logs cleaned up';
  },
});
