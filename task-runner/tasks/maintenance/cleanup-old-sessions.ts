import * as z from 'zod';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';

// One batch is one statement, so one short transaction: it commits or rolls back whole.
// SKIP LOCKED lets a batch pass over sessions another transaction is using right now. The batch
// is chosen once, in a materialized CTE: as `WHERE id IN (SELECT … LIMIT … FOR UPDATE SKIP
// LOCKED)` it is up to the plan whether the locking subquery runs once, and a test run saw one
// statement delete part of a batch (131 of 200) with thousands of expired sessions left.
const DELETE_BATCH = `
  WITH batch AS MATERIALIZED (
    SELECT id FROM user_sessions
    WHERE expires_at < $1
    ORDER BY expires_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
  DELETE FROM user_sessions s USING batch WHERE s.id = batch.id`;

export default defineTask({
  name: 'maintenance.cleanup-old-sessions',
  family: 'maintenance',
  description: 'Deletes expired user sessions in bounded batches',
  params: z.strictObject({
    batchSize: z.int().min(1).max(50_000).default(1000).describe('sessions deleted per batch, each batch its own transaction'),
    maxBatches: z.int().min(1).max(100_000).default(500).describe('batches per run at most; the next run deletes the rest'),
  }),
  defaults: {
    schedule: '0 4 * * *',
    retry: { maxRetries: 3, delaySeconds: 600, backoff: 'Fixed' },
    timeoutSeconds: 1800,
    softTimeoutSeconds: 1500,
  },
  needs: { postgres: true },
  async run(ctx) {
    const { batchSize, maxBatches } = ctx.params;
    // A fixed cutoff bounds the run: sessions expiring while it runs wait for the next one.
    const cutoff = ctx.clock.now();
    if (ctx.dryRun) {
      const { rows } = await ctx.db.query<{ n: string }>('SELECT count(*) AS n FROM user_sessions WHERE expires_at < $1', [cutoff]);
      const expired = Number(rows[0]?.n ?? 0);
      ctx.set('sessions_expired', expired);
      return `dry run: ${countNoun(expired, 'expired session')} would be deleted`;
    }
    ctx.count('sessions_cleaned', 0);
    ctx.count('batches', 0);
    let total = 0;
    for (let batch = 1; batch <= maxBatches; batch++) {
      ctx.signal.throwIfAborted();
      const { rowCount } = await ctx.db.query(DELETE_BATCH, [cutoff, batchSize]);
      const deleted = rowCount ?? 0;
      total += deleted;
      ctx.count('batches');
      ctx.count('sessions_cleaned', deleted);
      ctx.log.info({ batch, deleted }, 'session batch deleted');
      if (deleted < batchSize) return `deleted ${countNoun(total, 'expired session')} in ${countNoun(batch, 'batch', 'batches')}`;
    }
    ctx.set('more_pending', true);
    return `deleted ${countNoun(total, 'expired session')}, stopped after ${countNoun(maxBatches, 'batch', 'batches')}; expired sessions remain for the next run`;
  },
});
