// The index half of maintenance.optimize-database: invalid indexes (the leftovers of interrupted
// REINDEX CONCURRENTLY dropped, the application's own reported and rebuilt on request); unused
// indexes are reported by unused-indexes.ts. Loaded by the task's run(), never by the registry: it
// imports pg.
import pg from 'pg';
import { countNoun } from '../../count-noun.ts';
import { describeError } from '../../errors.ts';
import type { TaskContext } from '../../task.ts';

export type UpkeepContext = Pick<TaskContext<unknown>, 'db' | 'log' | 'signal' | 'dryRun' | 'count' | 'set'>;

interface InvalidIndex {
  schemaname: string;
  indexname: string;
  tablename: string;
  building: boolean;
  live: boolean;
}

interface TableLeftover {
  oid: string;
  schemaname: string;
  indexname: string;
  tablename: string;
}

/**
 * SQL: a build (CREATE INDEX or REINDEX, concurrent or not) is under way now on table `t` (a
 * pg_class alias; `main`, LEFT JOINed, the main table when `t` is a TOAST table). By table (relid),
 * not by index (index_relid): a REINDEX TABLE CONCURRENTLY builds every copy, its TOAST table's
 * too, then works on one at a time while the others wait invalid; so a build on the table, on its
 * TOAST table, or on the main table of a TOAST table counts. A session of another role shows no
 * relid here: such a build in this database might be on any table.
 */
function buildingOnSql(t: string, main: string): string {
  return `EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
                  WHERE p.datname = current_database()
                    AND (p.relid IS NULL OR p.relid IN (${t}.oid, ${t}.reltoastrelid, ${main}.oid)))`;
}

// The names REINDEX CONCURRENTLY gives its new copy (<index>_ccnew) and the replaced original
// (<index>_ccold), digits added when the name is taken.
const LEFTOVER_NAME = `'_cc(new|old)[0-9]*$'`;

// The invalid plain indexes in the schemas (a partitioned index is invalid until every partition
// has its own attached: no failed build, nothing to drop or rebuild). Only on tables this role may
// maintain, the same rule as the vacuum's: DROP INDEX and REINDEX need the owner's rights and fail
// with an error on any other table. $2 picks one kind by name: REINDEX CONCURRENTLY's leftovers
// (LEFTOVER_NAME), or any other name, an index the application asked for, whose CREATE INDEX
// CONCURRENTLY failed.
// `building`: BUILDING_ON the table. `live`: false once a DROP INDEX CONCURRENTLY marked it dead.
const INVALID_INDEXES = `
  SELECT n.nspname AS schemaname, x.relname AS indexname, t.relname AS tablename,
         ${buildingOnSql('t', 'main')} AS building, i.indislive AS live
  FROM pg_index i
  JOIN pg_class x ON x.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = x.relnamespace
  LEFT JOIN pg_class main ON main.reltoastrelid = t.oid
  WHERE NOT i.indisvalid
    AND x.relkind = 'i'
    AND n.nspname = ANY($1::text[])
    AND pg_has_role(t.relowner, 'MEMBER')
    AND (x.relname ~ ${LEFTOVER_NAME}) = $2
  ORDER BY n.nspname, x.relname`;

// Whether a build is under way now on one table ($1, its qualified name): asked again right before
// each DROP, the list of invalid indexes being older. No row when the table is gone.
const BUILDING_ON_TABLE = `
  SELECT ${buildingOnSql('t', 'main')} AS building
  FROM pg_class t LEFT JOIN pg_class main ON main.reltoastrelid = t.oid
  WHERE t.oid = to_regclass($1)`;

// The invalid indexes named as REINDEX CONCURRENTLY's leftovers on one table ($1, its qualified name).
const TABLE_LEFTOVERS = `
  SELECT x.oid::text AS oid, n.nspname AS schemaname, x.relname AS indexname, t.relname AS tablename
  FROM pg_index i
  JOIN pg_class x ON x.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = x.relnamespace
  WHERE i.indrelid = $1::regclass AND NOT i.indisvalid AND x.relname ~ ${LEFTOVER_NAME}`;

/** `"schema"."name"`, each part quoted for SQL. */
export function qualifiedName(schema: string, name: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`;
}

/** An index and its table, by qualified name: what the SQL and the log lines take. */
interface Named {
  index: string;
  table: string;
}

export const named = (row: { schemaname: string; indexname: string; tablename: string }): Named => ({
  index: qualifiedName(row.schemaname, row.indexname),
  table: qualifiedName(row.schemaname, row.tablename),
});

const sqlState = (err: unknown) => String((err as { code?: unknown }).code);

/** The invalid indexes of one kind: the application's own, or the leftovers of interrupted rebuilds. */
async function invalidIndexesOf(ctx: UpkeepContext, schemas: string[], leftovers: boolean): Promise<InvalidIndex[]> {
  return (await ctx.db.query<InvalidIndex>(INVALID_INDEXES, [schemas, leftovers])).rows;
}

/** Those no build is working on; those it is are logged and left alone. */
function idle(ctx: UpkeepContext, indexes: InvalidIndex[]): InvalidIndex[] {
  for (const index of indexes.filter((i) => i.building)) ctx.log.info(named(index), 'index being built by another session: left alone');
  return indexes.filter((i) => !i.building);
}

const invalidIndexes = (n: number) => countNoun(n, 'invalid index', 'invalid indexes');
const leftoverIndexes = (n: number) => countNoun(n, 'leftover invalid index', 'leftover invalid indexes');
const listed = (indexes: Named[]) => indexes.map((i) => i.index).join(', ');

/**
 * The application's own invalid indexes: reported, never dropped (the application asked for them
 * and would silently lose one), and with `reindex` rebuilt with REINDEX INDEX CONCURRENTLY, which
 * makes them valid (REINDEX TABLE CONCURRENTLY skips invalid indexes). A failed DROP of a failed
 * rebuild's copy goes to `failures`. Returns the run message's part.
 *
 * Only DROP INDEX CONCURRENTLY marks an index dead (indislive false): one interrupted after that
 * leaves it invalid and no longer written, a unique one no longer enforcing its rule. Rebuilding
 * it would bring back an index, and a rule, the application was removing: it is reported as
 * half-dropped and never rebuilt (nor dropped: finishing that DROP is the application's call).
 * A live invalid index is what a failed CREATE INDEX CONCURRENTLY leaves, and also a DROP INDEX
 * CONCURRENTLY interrupted before it marked the index dead; the catalog tells them apart no
 * further. A rebuild finishes the first (Postgres's documented remedy besides dropping it); for
 * the second it makes queries use again an index writes still kept up (and a unique one still
 * enforced): changing no rule, and undone by the DROP run again. So live ones are rebuilt.
 */
export async function upkeepOwnInvalidIndexes(ctx: UpkeepContext, schemas: string[], reindex: boolean, failures: string[]): Promise<string | undefined> {
  const found = await invalidIndexesOf(ctx, schemas, false);
  // Half-dropped ones are reported whatever runs on their table: nothing here touches them.
  const halfDropped = found.filter((i) => !i.live).map(named);
  const indexes = idle(ctx, found.filter((i) => i.live)).map(named);
  ctx.set('invalid_indexes_reported', indexes.length);
  ctx.set('half_dropped_indexes', halfDropped.length);
  ctx.count('invalid_indexes_rebuilt', 0);
  for (const index of halfDropped) ctx.log.warn(index, 'invalid index left by an interrupted DROP INDEX CONCURRENTLY: never rebuilt');
  let rebuilt = 0;
  for (const index of indexes) {
    ctx.signal.throwIfAborted();
    ctx.log.warn(index, 'invalid index');
    if (!reindex) continue;
    if (ctx.dryRun) {
      ctx.log.info(index, 'would rebuild invalid index');
    } else if (await rebuildInvalidIndex(ctx, index, failures)) {
      rebuilt++;
      ctx.count('invalid_indexes_rebuilt');
    }
  }
  const parts: string[] = [];
  if (indexes.length > 0) {
    const reported = `${invalidIndexes(indexes.length)} (${listed(indexes)})`;
    if (!reindex) parts.push(`reported ${reported}`);
    else parts.push(ctx.dryRun ? `${reported} would be rebuilt` : `rebuilt ${rebuilt} of ${reported}`);
  }
  if (halfDropped.length > 0) {
    parts.push(`reported ${countNoun(halfDropped.length, 'half-dropped index', 'half-dropped indexes')} (${listed(halfDropped)}): interrupted DROP INDEX CONCURRENTLY, never rebuilt`);
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/**
 * REINDEX INDEX CONCURRENTLY; false when the table's rows forbid the index (a unique index over
 * duplicates: SQLSTATE class 23). That is for the application to fix, and failing the run would
 * leave the vacuum undone. The invalid copy such a failed rebuild leaves is dropped at once.
 */
async function rebuildInvalidIndex(ctx: UpkeepContext, index: Named, failures: string[]): Promise<boolean> {
  const started = performance.now();
  const before = new Set((await tableLeftovers(ctx, index.table)).map((l) => l.oid));
  try {
    await ctx.db.query(`REINDEX INDEX CONCURRENTLY ${index.index}`);
  } catch (err) {
    if (!sqlState(err).startsWith('23')) throw err;
    ctx.log.warn({ ...index, err }, 'invalid index not rebuilt: the rows break its rule');
    await dropFailedRebuildCopy(ctx, index, before, failures);
    return false;
  }
  ctx.log.info({ ...index, ms: Math.round(performance.now() - started) }, 'invalid index rebuilt');
  return true;
}

async function tableLeftovers(ctx: UpkeepContext, table: string): Promise<TableLeftover[]> {
  return (await ctx.db.query<TableLeftover>(TABLE_LEFTOVERS, [table])).rows;
}

/**
 * Drops the invalid <index>_ccnew a failed REINDEX CONCURRENTLY of `index` left, whatever
 * dropInvalidIndexes says: every run would leave one more (_ccnew1, _ccnew2, …), each updated by
 * every write. It is a leftover-named invalid index of the table there now and not `before` the
 * REINDEX (oids). Both lists are read outside the table's lock (before the REINDEX took it, after
 * it let go): a copy another session's build made in one of those gaps passes for this one's, and
 * is dropped only if no build is under way on the table right before its DROP (dropIndex): a
 * leftover too, then, not work in progress.
 */
async function dropFailedRebuildCopy(ctx: UpkeepContext, index: Named, before: ReadonlySet<string>, failures: string[]): Promise<void> {
  for (const copy of await tableLeftovers(ctx, index.table)) {
    if (!before.has(copy.oid)) await dropIndex(ctx, named(copy), failures, 'invalid copy of the failed rebuild');
  }
}

/**
 * Drops the invalid copies interrupted REINDEX CONCURRENTLYs left (every write updates them, no
 * query reads them), with DROP INDEX CONCURRENTLY, one statement each: a stop is honoured between
 * them. Kept when `drop` is off, and in a dry run. A DROP that fails goes to `failures`, and the
 * others are still dropped. Returns the run message's part.
 */
export async function dropLeftoverIndexes(ctx: UpkeepContext, schemas: string[], drop: boolean, failures: string[]): Promise<string | undefined> {
  const leftovers = idle(ctx, await invalidIndexesOf(ctx, schemas, true)).map(named);
  ctx.set('leftover_indexes', leftovers.length);
  ctx.count('invalid_indexes_dropped', 0);
  let dropped = 0;
  for (const index of leftovers) {
    ctx.signal.throwIfAborted();
    // `drop` first: a dry run says what a real run with the same params would do.
    if (!drop) {
      ctx.log.info(index, 'leftover invalid index kept: dropInvalidIndexes is off');
    } else if (ctx.dryRun) {
      ctx.log.info(index, 'would drop leftover invalid index');
    } else if ((await dropIndex(ctx, index, failures)) === 'dropped') {
      dropped++;
      ctx.count('invalid_indexes_dropped');
    }
  }
  if (leftovers.length === 0) return undefined;
  if (!drop) return `kept ${leftoverIndexes(leftovers.length)}`;
  return ctx.dryRun ? `${leftoverIndexes(leftovers.length)} would be dropped` : `dropped ${leftoverIndexes(dropped)}`;
}

/**
 * DROP INDEX CONCURRENTLY of an invalid index whose table has no build under way, asked right
 * before the DROP (the list the index came from is older; a copy being built is work in progress,
 * not a leftover): 'busy' when one is, logged, nothing done. The look and the DROP are two
 * statements (DROP INDEX CONCURRENTLY runs in no transaction block, so no lock spans both). A build
 * started in between makes the DROP wait for it (both take SHARE UPDATE EXCLUSIVE on the table), so
 * no copy is dropped while being built: the DROP then finds it swapped into place under its
 * index's name (gone, 42704) or left over by a build that failed. Only a build of the leftover
 * itself, whose new copy takes the leftover's name, would have its result dropped.
 * 'gone' when the index went before (SQLSTATE 42704). Any other error fails this index only:
 * logged, counted (index_drops_failed) and added to `failures`, for the run to fail with once the
 * rest is done. `what` names the index in the log.
 */
async function dropIndex(ctx: UpkeepContext, index: Named, failures: string[], what = 'leftover invalid index'): Promise<'dropped' | 'gone' | 'busy' | 'failed'> {
  const { rows } = await ctx.db.query<{ building: boolean }>(BUILDING_ON_TABLE, [index.table]);
  if (rows[0]?.building) {
    ctx.log.info(index, 'index being built by another session: left alone');
    return 'busy';
  }
  try {
    await ctx.db.query(`DROP INDEX CONCURRENTLY ${index.index}`);
  } catch (err) {
    if (sqlState(err) === '42704') {
      ctx.log.info(index, `${what} gone before it was dropped`);
      return 'gone';
    }
    ctx.count('index_drops_failed');
    failures.push(`${index.index}: ${describeError(err)}`);
    ctx.log.warn({ ...index, err }, `${what} not dropped`);
    return 'failed';
  }
  ctx.log.info(index, `${what} dropped`);
  return 'dropped';
}
