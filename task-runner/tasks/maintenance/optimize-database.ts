import * as z from 'zod';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';

interface Candidate {
  schemaname: string;
  relname: string;
  n_live_tup: string;
  n_dead_tup: string;
  indexes: number;
}

// User tables whose dead-tuple share is over the threshold, biggest first. Only tables this
// role may vacuum (it owns them, or is a member of the owner) are taken: VACUUM on any other
// is skipped by Postgres with a mere warning, and would be counted as done.
const CANDIDATES = `
  SELECT s.schemaname, s.relname, s.n_live_tup, s.n_dead_tup,
         (SELECT count(*)::int FROM pg_index i WHERE i.indrelid = s.relid) AS indexes
  FROM pg_stat_user_tables s
  JOIN pg_class c ON c.oid = s.relid
  WHERE s.schemaname = ANY($1::text[])
    AND pg_has_role(c.relowner, 'MEMBER')
    AND s.n_dead_tup >= $2
    AND s.n_dead_tup::float8 / GREATEST(s.n_live_tup + s.n_dead_tup, 1) > $3
  ORDER BY s.n_dead_tup DESC
  LIMIT $4`;

export default defineTask({
  name: 'maintenance.optimize-database',
  family: 'maintenance',
  description:
    'VACUUM (ANALYZE) the tables with many dead tuples, optionally REINDEX them concurrently; drops the invalid leftovers of interrupted ' +
    'REINDEX CONCURRENTLY, reports (and optionally rebuilds) other invalid indexes, reports unused indexes',
  params: z.strictObject({
    deadTupleRatio: z.number().min(0).max(1).default(0.2).describe('vacuum a table when n_dead_tup / (n_live_tup + n_dead_tup) exceeds this'),
    minDeadTuples: z.int().min(0).default(1000).describe('and it has at least this many dead tuples'),
    reindex: z.boolean().default(false).describe('also REINDEX TABLE CONCURRENTLY each vacuumed table, and rebuild the invalid indexes no REINDEX left (not one an interrupted DROP INDEX CONCURRENTLY left dead)'),
    schemas: z.array(z.string().min(1)).min(1).default(['public']).describe('schemas to look in'),
    maxTables: z.int().min(1).max(1000).default(50).describe('tables per run at most'),
    dropInvalidIndexes: z.boolean().default(true).describe('DROP INDEX CONCURRENTLY the invalid <index>_ccnew/_ccold an interrupted REINDEX CONCURRENTLY left'),
    reportUnusedIndexes: z.boolean().default(true).describe('log the indexes never scanned since the statistics were reset (not unique, backing no constraint, serving no foreign key); never drops them'),
    unusedIndexMinBytes: z.int().min(0).default(1024 * 1024).describe('report an unused index only from this size on'),
  }),
  defaults: {
    schedule: '0 3 * * 0',
    retry: { maxRetries: 3, delaySeconds: 3600, backoff: 'Fixed' },
    timeoutSeconds: 7200,
    softTimeoutSeconds: 6600,
  },
  needs: { postgres: true },
  async run(ctx) {
    const { deadTupleRatio, minDeadTuples, reindex, schemas, maxTables, dropInvalidIndexes, reportUnusedIndexes, unusedIndexMinBytes } = ctx.params;
    const [upkeep, unused] = await Promise.all([import('./index-upkeep.ts'), import('./unused-indexes.ts')]);
    // An index whose DROP failed, and why: the rest of the run goes on, then fails naming them
    // (a retry, or the next run, drops them).
    const dropFailures: string[] = [];
    ctx.count('index_drops_failed', 0);
    // Index upkeep before the vacuum, so a run stopped mid-vacuum has done it.
    const notes = [
      await upkeep.upkeepOwnInvalidIndexes(ctx, schemas, reindex, dropFailures),
      await upkeep.dropLeftoverIndexes(ctx, schemas, dropInvalidIndexes, dropFailures),
      reportUnusedIndexes ? await unused.reportUnusedIndexes(ctx, schemas, unusedIndexMinBytes) : undefined,
    ];
    const { rows } = await ctx.db.query<Candidate>(CANDIDATES, [schemas, minDeadTuples, deadTupleRatio, maxTables]);
    ctx.set('tables_candidate', rows.length);
    ctx.count('tables_optimized', 0);
    ctx.count('indexes_updated', 0);
    for (const table of rows) {
      // VACUUM and REINDEX CONCURRENTLY cannot run in a transaction: each is its own statement, and a safe point.
      ctx.signal.throwIfAborted();
      const name = upkeep.qualifiedName(table.schemaname, table.relname);
      const deadTuples = Number(table.n_dead_tup);
      if (ctx.dryRun) {
        ctx.log.info({ table: name, deadTuples }, 'would vacuum');
        continue;
      }
      const started = performance.now();
      await ctx.db.query(`VACUUM (ANALYZE) ${name}`);
      ctx.count('tables_optimized');
      ctx.count('dead_tuples_found', deadTuples);
      ctx.log.info({ table: name, deadTuples, ms: Math.round(performance.now() - started) }, 'table vacuumed');
      if (reindex && table.indexes > 0) {
        // A REINDEX CONCURRENTLY killed midway leaves an invalid "<index>_ccnew" behind (Postgres's
        // own caveat; the next run drops it); stopping only between statements, on the abort
        // signal, avoids that.
        ctx.signal.throwIfAborted();
        await ctx.db.query(`REINDEX TABLE CONCURRENTLY ${name}`);
        ctx.count('indexes_updated', table.indexes);
        ctx.log.info({ table: name, indexes: table.indexes }, 'table reindexed');
      }
    }
    const vacuum = ctx.dryRun ? `dry run: ${countNoun(rows.length, 'table')} would be vacuumed` : `vacuumed ${countNoun(rows.length, 'table')}`;
    const message = [vacuum, ...notes.filter((note) => note !== undefined)].join('; ');
    if (dropFailures.length > 0) throw new Error(`${countNoun(dropFailures.length, 'index drop')} failed: ${dropFailures.join('; ')}; ${message}`);
    return message;
  },
});
