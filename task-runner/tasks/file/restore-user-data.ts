import * as z from 'zod';
import { InvalidInputError } from '../../errors.ts';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';
import type { Pool } from 'pg';
import type { Manifest } from './user-data-archive.ts';

/**
 * Refuses an archive with columns the database's tables lack (an archive from a newer schema):
 * their values would be dropped. Named per table, with the archive's migrations this database
 * has not applied, when it knows them.
 */
async function refuseUnknownColumns(db: Pool, name: string, manifest: Manifest, columns: Map<string, string[]>): Promise<void> {
  const { rows } = await db.query<{ table_name: string; column_name: string }>(
    'SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ANY($1)',
    [[...columns.keys()]],
  );
  const unknown: string[] = [];
  for (const [table, archived] of columns) {
    const known = new Set(rows.filter((r) => r.table_name === table).map((r) => r.column_name));
    const missing = archived.filter((c) => !known.has(c));
    if (missing.length > 0) unknown.push(`${table} (${missing.join(', ')})`);
  }
  if (unknown.length === 0) return;
  const { rows: applied } = await db.query<{ name: string }>('SELECT name FROM pgmigrations');
  const appliedNames = new Set(applied.map((r) => r.name));
  const newer = manifest.migrations.filter((m) => !appliedNames.has(m));
  throw new InvalidInputError(
    `archive ${name} holds columns this database lacks, whose values a restore would lose: ${unknown.join('; ')}` +
      (newer.length > 0 ? `; it was written after migrations this database has not applied: ${newer.join(', ')}` : ''),
  );
}

export default defineTask({
  name: 'file.restore-user-data',
  family: 'file',
  description: 'Restores a file.backup-user-data archive into an empty database and user-data root, after verifying every checksum',
  params: z.strictObject({
    archive: z.string().min(1).default('latest').describe("archive file name in BGTASK_BACKUP_DIR, or 'latest'"),
    batchRows: z.int().min(1).max(50_000).default(1000).describe('rows inserted per statement'),
  }),
  defaults: {
    // Run on demand only: 31 February never comes.
    schedule: '0 0 31 2 *',
    retry: { maxRetries: 0, delaySeconds: 60, backoff: 'Fixed' },
    timeoutSeconds: 7200,
    softTimeoutSeconds: 6600,
  },
  needs: { postgres: true },
  async run(ctx) {
    const p = ctx.params;
    const env = ctx.requireSettings(['BGTASK_BACKUP_DIR', 'BGTASK_USER_DATA_ROOT']);
    const [{ checkRoots, isInside }, { withTransaction }, fs, path, archive, tar, { createReadStream }, { createInterface }] = await Promise.all([
      import('../../services/file-roots.ts'),
      import('../../services/postgres.ts'),
      import('node:fs/promises'),
      import('node:path'),
      import('./user-data-archive.ts'),
      import('tar'),
      import('node:fs'),
      import('node:readline'),
    ]);
    const [backupRoot, dataRoot] = await checkRoots([env.BGTASK_BACKUP_DIR, env.BGTASK_USER_DATA_ROOT], env.BGTASK_FILE_ROOTS, 'backup directory or user-data root');
    if (!backupRoot!.real) throw new InvalidInputError(`backup directory ${backupRoot!.given} does not exist`);
    const backupDir = backupRoot!.real;
    const listing = await fs.readdir(backupDir);
    const names = listing.filter((f) => archive.ARCHIVE_PATTERN.test(f));
    // `latest` is the newest whole archive: one without its sidecar is from a killed backup.
    const name = p.archive === 'latest' ? archive.completeArchives(listing).at(-1) : p.archive;
    if (!name) throw new InvalidInputError(`no complete archive (with its .sha256) in ${backupDir}`);
    if (!archive.ARCHIVE_PATTERN.test(name) || !names.includes(name)) throw new InvalidInputError(`archive ${name} is not a backup in ${backupDir}`);
    const file = path.join(backupDir, name);
    ctx.set('archive', name);

    // The whole archive first: a corrupt one is refused before anything is read from it.
    let sidecar: string;
    try {
      sidecar = await fs.readFile(`${file}.sha256`, 'utf8');
    } catch (err) {
      throw new InvalidInputError(`archive ${name} has no readable checksum file ${name}.sha256`, { cause: err });
    }
    const expected = archive.parseSidecar(sidecar);
    const actual = await archive.sha256File(file);
    if (expected !== actual) throw new InvalidInputError(`checksum mismatch: ${name} has sha256 ${actual}, ${name}.sha256 says ${expected ?? '(unreadable)'}`);

    const { rows: existing } = await ctx.db.query<{ n: string }>('SELECT count(*) AS n FROM users');
    if (Number(existing[0]?.n) > 0) throw new InvalidInputError(`refusing to restore into a database that already has ${existing[0]?.n} users: restore into an empty one`);
    const target = dataRoot!.real ?? dataRoot!.given;

    const staging = await fs.mkdtemp(path.join(backupDir, '.restore-'));
    try {
      const refused: string[] = [];
      // Only plain files and directories; tar already strips absolute paths and refuses `..`.
      await tar.extract({
        file,
        cwd: staging,
        strict: true,
        filter: (entryPath, entry) => {
          const type = (entry as { type?: string }).type;
          const ok = type === 'File' || type === 'Directory';
          if (!ok) refused.push(`${entryPath} (${type})`);
          return ok;
        },
      });
      if (refused.length > 0) throw new InvalidInputError(`archive ${name} holds entries that are not files or directories: ${refused.join(', ')}`);
      const manifest = JSON.parse(await fs.readFile(path.join(staging, 'manifest.json'), 'utf8')) as Manifest;
      if (manifest.format !== archive.FORMAT || manifest.version !== archive.FORMAT_VERSION) {
        throw new InvalidInputError(`archive ${name} is format ${manifest.format} v${manifest.version}, not ${archive.FORMAT} v${archive.FORMAT_VERSION}`);
      }
      const members = [
        ...manifest.tables.map((t) => ({ path: t.file, sha256: t.sha256, root: staging })),
        // A file that stays inside files/ is restored to the same place inside the target.
        ...manifest.files.map((f) => ({ path: `files/${f.path}`, sha256: f.sha256, root: path.join(staging, 'files') })),
      ];
      // The manifest names members by path: none may lead out of the archive (or out of the target).
      const outside = members.filter((m) => {
        const full = path.resolve(staging, m.path);
        return full === m.root || !isInside(full, m.root);
      });
      if (outside.length > 0) throw new InvalidInputError(`archive ${name} names paths outside it in its manifest: ${outside.map((m) => m.path).join(', ')}`);
      for (const member of members) {
        const digest = await archive.sha256File(path.join(staging, member.path));
        if (digest !== member.sha256) throw new InvalidInputError(`checksum mismatch inside ${name}: ${member.path} has sha256 ${digest}, the manifest says ${member.sha256}`);
      }
      // Everything the rows step would refuse, refused before anything is written.
      const columns = new Map<string, string[]>();
      for (const { table, file: member, rows } of manifest.tables) {
        if (!archive.USER_TABLES.some((t) => t.table === table)) throw new InvalidInputError(`archive ${name} holds an unknown table ${table}`);
        const lines = await archive.countLines(path.join(staging, member));
        if (lines !== rows) throw new InvalidInputError(`${member} holds ${lines} rows, the manifest says ${rows}`);
        try {
          columns.set(table, await archive.dumpColumns(path.join(staging, member)));
        } catch (err) {
          throw new InvalidInputError(`archive ${name}: ${(err as Error).message}`, { cause: err });
        }
      }
      await refuseUnknownColumns(ctx.db, name, manifest, columns);

      // The target must be empty, or hold only what an interrupted restore of this archive left.
      if (dataRoot!.real) {
        const foreign = await archive.filesNotRestoredBy(target, manifest);
        if (foreign.length > 0) {
          throw new InvalidInputError(
            `refusing to restore into the non-empty user-data root ${target}: it holds ${foreign.length === 1 ? 'a file' : 'files'} this archive does not restore (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''})`,
          );
        }
      }
      if (ctx.dryRun) return `dry run: ${name} verified; it would be restored`;

      // Files first, each under a temporary name and renamed, then the rows in one transaction: a
      // restore stopped on the way leaves an empty database and this archive's files, which a
      // second run of it accepts and completes.
      await fs.mkdir(target, { recursive: true });
      for (const f of manifest.files) {
        ctx.signal.throwIfAborted();
        const to = path.join(target, f.path);
        await fs.mkdir(path.dirname(to), { recursive: true });
        await fs.copyFile(path.join(staging, 'files', f.path), `${to}${archive.PARTIAL_SUFFIX}`);
        await fs.utimes(`${to}${archive.PARTIAL_SUFFIX}`, new Date(f.mtimeMs), new Date(f.mtimeMs));
        await fs.rename(`${to}${archive.PARTIAL_SUFFIX}`, to);
        ctx.count('files');
      }

      // All rows in one transaction, parents first, ids kept (OVERRIDING SYSTEM VALUE), identity
      // sequences moved past them.
      await withTransaction(ctx.db, async (client) => {
        for (const { table, file: member, rows } of archive.inRestoreOrder(manifest.tables)) {
          ctx.signal.throwIfAborted();
          // Line by line, a batch at a time: a table need not fit in memory (or in one string).
          let count = 0;
          let batch: string[] = [];
          // Only the archive's columns: a column it lacks (added by a later migration) gets its DEFAULT.
          const list = columns.get(table)!.map((c) => client.escapeIdentifier(c)).join(', ');
          const insert = async () => {
            await client.query(`INSERT INTO ${table} (${list}) OVERRIDING SYSTEM VALUE SELECT ${list} FROM json_populate_recordset(NULL::${table}, $1::json)`, [
              `[${batch.join(',')}]`,
            ]);
            batch = [];
          };
          for await (const line of createInterface({ input: createReadStream(path.join(staging, member)), crlfDelay: Infinity })) {
            if (!line) continue;
            count++;
            batch.push(line);
            if (batch.length === p.batchRows) {
              ctx.signal.throwIfAborted();
              await insert();
            }
          }
          if (batch.length > 0) await insert();
          // Counted before (countLines); checked again as read, in case the file changed since.
          if (count !== rows) throw new InvalidInputError(`${member} holds ${count} rows, the manifest says ${rows}`);
          const { rows: identity } = await client.query<{ column_name: string }>(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND is_identity = 'YES'",
            [table],
          );
          for (const { column_name: column } of identity) {
            await client.query(
              `SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT max(${column}) FROM ${table}), 1), (SELECT max(${column}) IS NOT NULL FROM ${table}))`,
              [table, column],
            );
          }
          ctx.count('rows', rows);
        }
        const archived = new Set(manifest.tables.map((t) => t.table));
        for (const [table, fill] of Object.entries(archive.FILLED_WHEN_ABSENT)) {
          if (archived.has(table)) continue;
          const { rowCount } = await client.query(fill);
          ctx.log.info({ table, rows: rowCount }, 'table the archive predates filled from the restored rows');
        }
        for (const [table, fills] of Object.entries(archive.COLUMNS_FILLED_WHEN_ABSENT)) {
          for (const [column, fill] of Object.entries(fills)) {
            if (!archived.has(table) || columns.get(table)!.includes(column)) continue;
            const { rowCount } = await client.query(fill);
            ctx.log.info({ table, column, rows: rowCount }, 'column the archive predates filled from the restored rows');
          }
        }
      }, { log: ctx.log });
      ctx.set('tables', manifest.tables.length);
      return `restored ${name}: ${countNoun(manifest.tables.length, 'table')}, ${countNoun(manifest.files.length, 'file')}`;
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  },
});
