// Unused indexes, reported by maintenance.optimize-database (never dropped). Loaded by the task's
// run(), never by the registry.
import { countNoun } from '../../count-noun.ts';
import { named, type UpkeepContext } from './index-upkeep.ts';

interface UnusedIndex {
  schemaname: string;
  indexname: string;
  tablename: string;
  bytes: string;
}

// Valid indexes never scanned since the statistics were last reset, of at least $2 bytes, that
// only queries could need: not unique (a unique index enforces its rule without being scanned),
// backing no constraint (primary key, unique, exclusion), and serving no foreign key of its table
// (its leading key columns are the key's columns, in any order): a delete or key update of the
// referenced row looks the referencing rows up through it, a need idx_scan may not show while such
// deletes are rare, and without it each one scans the whole table. Reporting changes nothing, so
// the tables of every owner count.
const UNUSED_INDEXES = `
  SELECT s.schemaname, s.indexrelname AS indexname, s.relname AS tablename, size.bytes
  FROM pg_stat_user_indexes s
  JOIN pg_index i ON i.indexrelid = s.indexrelid
  CROSS JOIN LATERAL pg_relation_size(s.indexrelid) AS size(bytes)
  WHERE s.schemaname = ANY($1::text[])
    AND s.idx_scan = 0
    AND i.indisvalid AND NOT i.indisunique
    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
    AND NOT EXISTS (
      SELECT 1 FROM pg_constraint fk
      WHERE fk.contype = 'f' AND fk.conrelid = i.indrelid
        AND cardinality(fk.conkey) <= i.indnkeyatts
        AND i.indkey[0:cardinality(fk.conkey) - 1] @> fk.conkey
        AND i.indkey[0:cardinality(fk.conkey) - 1] <@ fk.conkey)
    AND size.bytes >= $2
  ORDER BY size.bytes DESC, s.schemaname, s.indexrelname`;

/**
 * Reports the indexes no query has used, at least `minBytes` big, one log line each. Never drops
 * them: idx_scan counts only since the statistics were last reset, and only this server's scans
 * (a read replica's queries may need the index). Returns the run message's part.
 */
export async function reportUnusedIndexes(ctx: UpkeepContext, schemas: string[], minBytes: number): Promise<string | undefined> {
  const { rows } = await ctx.db.query<UnusedIndex>(UNUSED_INDEXES, [schemas, minBytes]);
  ctx.set('unused_indexes', rows.length);
  for (const row of rows) ctx.log.info({ ...named(row), bytes: Number(row.bytes) }, 'unused index');
  return rows.length === 0 ? undefined : `${countNoun(rows.length, 'unused index', 'unused indexes')} reported`;
}
