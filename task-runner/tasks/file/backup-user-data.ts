import * as z from 'zod';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';

export default defineTask({
  name: 'file.backup-user-data',
  family: 'file',
  description: "Writes a gzipped, sha256-checksummed archive of the users' rows and files with a manifest; keeps the newest N",
  params: z.strictObject({
    keep: z.int().min(1).max(1000).default(4).describe('archives kept; older ones are removed after a successful backup'),
    batchRows: z.int().min(100).max(100_000).default(5000).describe('rows read per query'),
  }),
  defaults: {
    schedule: '0 1 * * 0',
    retry: { maxRetries: 3, delaySeconds: 3600, backoff: 'Fixed' },
    timeoutSeconds: 7200,
    softTimeoutSeconds: 6600,
  },
  needs: { postgres: true },
  async run(ctx) {
    const p = ctx.params;
    const env = ctx.requireSettings(['BGTASK_BACKUP_DIR']);
    const [{ checkRoots }, { withTransaction }, fs, path, crypto, archive, tar] = await Promise.all([
      import('../../services/file-roots.ts'),
      import('../../services/postgres.ts'),
      import('node:fs/promises'),
      import('node:path'),
      import('node:crypto'),
      import('./user-data-archive.ts'),
      import('tar'),
    ]);
    const { createWriteStream, createReadStream } = await import('node:fs');
    const { pipeline } = await import('node:stream/promises');
    const [backupRoot, dataRoot] = await checkRoots(
      [env.BGTASK_BACKUP_DIR, ...(env.BGTASK_USER_DATA_ROOT ? [env.BGTASK_USER_DATA_ROOT] : [])],
      env.BGTASK_FILE_ROOTS,
      'backup directory or user-data root',
    );
    const backupDir = backupRoot!.real ?? backupRoot!.given;
    const started = ctx.clock.now();
    const stamp = started.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const name = `user-data-${stamp}-${ctx.run.id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80)}.tar.gz`;
    if (ctx.dryRun) return `dry run: would write ${path.join(backupDir, name)}`;

    await fs.mkdir(backupDir, { recursive: true });
    const leftovers = await archive.removeLeftovers(backupDir, started);
    ctx.set('leftovers_removed', leftovers.length);
    if (leftovers.length > 0) ctx.log.warn({ leftovers }, 'removed what killed runs left in the backup directory');
    const staging = await fs.mkdtemp(path.join(backupDir, '.staging-'));
    try {
      const manifest: import('./user-data-archive.ts').Manifest = {
        format: archive.FORMAT,
        version: archive.FORMAT_VERSION,
        createdAt: started.toISOString(),
        runId: ctx.run.id,
        migrations: [],
        tables: [],
        files: [],
      };

      // Every table from one snapshot: rows referring to each other are consistent.
      await fs.mkdir(path.join(staging, 'db'));
      await withTransaction(ctx.db, async (client) => {
        manifest.migrations = (await client.query<{ name: string }>('SELECT name FROM pgmigrations ORDER BY run_on, id')).rows.map((r) => r.name);
        for (const { table, orderBy } of archive.USER_TABLES) {
          ctx.signal.throwIfAborted();
          const file = `db/${table}.jsonl`;
          const out = archive.openChunkedFile(path.join(staging, file));
          const hash = crypto.createHash('sha256');
          let rows = 0;
          // One query read a batch at a time through a cursor (in this transaction's snapshot):
          // LIMIT/OFFSET would read every skipped row again, quadratic in the table's size.
          await client.query(`DECLARE backup_rows NO SCROLL CURSOR FOR SELECT row_to_json(t)::text AS j FROM ${table} t ORDER BY ${orderBy}`);
          for (;;) {
            ctx.signal.throwIfAborted();
            const { rows: batch } = await client.query<{ j: string }>(`FETCH FORWARD ${p.batchRows} FROM backup_rows`);
            const text = batch.map((r) => `${r.j}\n`).join('');
            hash.update(text);
            await out.write(text);
            rows += batch.length;
            if (batch.length < p.batchRows) break;
          }
          await client.query('CLOSE backup_rows');
          await out.close();
          manifest.tables.push({ table, file, rows, sha256: hash.digest('hex') });
          ctx.count('rows', rows);
        }
      }, { isolation: 'repeatable read', readOnly: true, log: ctx.log });
      ctx.set('tables', manifest.tables.length);

      // The user-data tree, copied (a snapshot: the archive and its checksums agree even if the
      // originals change meanwhile) and hashed in one read. Symlinks are not followed, and left out.
      await fs.mkdir(path.join(staging, 'files'));
      ctx.count('files', 0);
      if (dataRoot?.real) {
        const walk = async (rel: string): Promise<void> => {
          for await (const entry of await fs.opendir(path.join(dataRoot.real!, rel))) {
            ctx.signal.throwIfAborted();
            const relPath = rel ? `${rel}/${entry.name}` : entry.name;
            if (entry.isDirectory()) {
              await fs.mkdir(path.join(staging, 'files', relPath));
              await walk(relPath);
            } else if (entry.isFile()) {
              const source = path.join(dataRoot.real!, relPath);
              const hash = crypto.createHash('sha256');
              let size = 0;
              const { mtimeMs } = await fs.lstat(source);
              await pipeline(
                createReadStream(source),
                async function* (chunks: AsyncIterable<Buffer>) {
                  for await (const chunk of chunks) {
                    hash.update(chunk);
                    size += chunk.length;
                    yield chunk;
                  }
                },
                createWriteStream(path.join(staging, 'files', relPath)),
                { signal: ctx.signal },
              );
              manifest.files.push({ path: relPath, size, sha256: hash.digest('hex'), mtimeMs });
              ctx.count('files');
              ctx.count('file_bytes', size);
            } else {
              ctx.count('entries_skipped');
              ctx.log.info({ path: relPath }, 'not a regular file or directory (a symlink?): left out of the backup');
            }
          }
        };
        await walk('');
      } else if (dataRoot) {
        ctx.log.warn({ root: dataRoot.given }, 'user-data root does not exist: the backup holds no files');
      }
      await fs.writeFile(path.join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);

      // Written under a temporary name and renamed: an archive under its final name is whole.
      const final = path.join(backupDir, name);
      const partial = path.join(staging, name);
      await pipeline(tar.create({ gzip: true, cwd: staging, portable: true }, ['manifest.json', 'db', 'files']), createWriteStream(partial), { signal: ctx.signal });
      const digest = await archive.sha256File(partial);
      await fs.rename(partial, final);
      await fs.writeFile(`${final}.sha256.partial`, archive.sidecarLine(digest, name));
      await fs.rename(`${final}.sha256.partial`, `${final}.sha256`);
      const { size } = await fs.stat(final);
      ctx.set('backup_location', final);
      ctx.set('backup_size_bytes', size);
      ctx.set('sha256', digest);

      // Retention: names sort by time; only after the new archive is in place, and only whole
      // archives count (one a killed run left without its sidecar goes with the leftovers).
      const archives = archive.completeArchives(await fs.readdir(backupDir));
      const old = archives.slice(0, Math.max(0, archives.length - p.keep));
      for (const f of old) {
        await fs.rm(path.join(backupDir, f));
        await fs.rm(path.join(backupDir, `${f}.sha256`), { force: true });
      }
      ctx.set('backups_removed', old.length);
      return `wrote ${final} (${countNoun(size, 'byte')}, ${countNoun(manifest.tables.length, 'table')}, ${countNoun(manifest.files.length, 'file')})`;
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  },
});
