// file.backup-user-data and file.restore-user-data as processes: a gzipped, checksummed archive of
// every user table and the user-data tree, retention of the newest N, and a restore into an EMPTY
// freshly migrated database and an empty directory that matches the source row by row and file by
// file; a corrupted archive, a manifest naming paths outside the archive and a non-empty target
// are refused.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type pg from 'pg';
import { create, extract, list } from 'tar';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { buildRunner, runRunner } from '../support/runner-process.ts';
import type { Manifest } from '../../task-runner/tasks/file/user-data-archive.ts';

const TABLES = ['users', 'ai_tasks', 'ai_task_results', 'calendar_feeds', 'calendar_events', 'calendar_event_uids', 'notifications', 'notion_connections', 'notion_pages', 'daily_summary_deliveries'];
let base: string;
let backups: string;
let userData: string;
let sourceUrl: string;
let source: pg.Pool;

beforeAll(async () => {
  buildRunner();
  base = mkdtempSync(join(tmpdir(), 'tasks-backup-'));
  backups = join(base, 'backups');
  userData = join(base, 'user-data');
  sourceUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_source'));
  source = testPool(sourceUrl);
  await seed(source);
  // The user-data tree: nested, binary, empty, and a symlink that must not be followed or stored.
  mkdirSync(join(userData, '1/notes/2027'), { recursive: true });
  mkdirSync(join(userData, '2'), { recursive: true });
  writeFileSync(join(userData, '1/notes/2027/jan.md'), '# January\n- plan\n');
  writeFileSync(join(userData, '1/avatar.png'), randomBytes(70_000));
  writeFileSync(join(userData, '2/empty.txt'), '');
  mkdirSync(join(base, 'secrets'));
  writeFileSync(join(base, 'secrets/key'), 'do not back me up');
  symlinkSync(join(base, 'secrets'), join(userData, '2/escape'));
});
afterAll(async () => {
  await source.end();
  rmSync(base, { recursive: true, force: true });
});

async function seed(db: pg.Pool): Promise<void> {
  const { rows: users } = await db.query<{ id: string }>(
    `INSERT INTO users (email, display_name, timezone, daily_summary_opt_in) VALUES
     ('ada@example.org', 'Ada', 'Europe/Berlin', true), ('bob@example.org', NULL, 'America/New_York', false) RETURNING id`,
  );
  const [ada, bob] = users.map((u) => u.id);
  const { rows: tasks } = await db.query<{ id: string }>(
    `INSERT INTO ai_tasks (user_id, title, description, schedule_type, schedule_config, cron_expression, timezone, next_run_at, run_count) VALUES
     ($1, 'Digest', 'news', 'daily', '{"time":"08:00"}', NULL, 'Europe/Berlin', now() + interval '1 day', 3),
     ($2, 'Cron', NULL, 'cron', '{}', '5 * * * *', 'UTC', NULL, 0) RETURNING id`,
    [ada, bob],
  );
  await db.query(`INSERT INTO ai_task_results (ai_task_id, user_id, run_id, status, result, model, total_tokens) VALUES ($1, $2, 'r1', 'succeeded', 'Done ✓ "quoted"', 'm', 12)`, [tasks[0]!.id, ada]);
  await db.query(`INSERT INTO notifications (user_id, ai_task_id, channel, title, body) VALUES ($1, $2, 'email', 'T', E'multi\\nline')`, [ada, tasks[0]!.id]);
  await db.query(`INSERT INTO calendar_feeds (user_id, url, etag) VALUES ($1, 'https://cal.example/ada.ics', '"abc"')`, [ada]);
  const { rows: events } = await db.query<{ id: string }>(
    `INSERT INTO calendar_events (user_id, calendar_id, uid, recurrence_id, summary, starts_at, ends_at, all_day, rrule, status) VALUES
     ($1, 'default', 'u1', NULL, 'One', '2027-03-01T10:00:00Z', '2027-03-01T11:00:00Z', false, NULL, 'confirmed'),
     ($1, 'default', 'u2', '2027-03-02T09:00:00Z', 'Rec', '2027-03-02T09:00:00Z', NULL, false, 'FREQ=DAILY', 'tentative') RETURNING id`,
    [ada],
  );
  // The feed's UIDs (migration 0017): u3 has no occurrence in the window, so no row in calendar_events.
  await db.query(
    `INSERT INTO calendar_event_uids (user_id, calendar_id, uid, first_seen_at) VALUES
     ($1, 'default', 'u1', '2027-02-01T10:00:00Z'), ($1, 'default', 'u2', '2027-02-02T10:00:00Z'), ($1, 'default', 'u3', '2027-02-03T10:00:00Z')`,
    [ada],
  );
  // Restored only after the event it names (a foreign key).
  await db.query(`INSERT INTO notifications (user_id, calendar_event_id, calendar_event_uid, channel, title) VALUES ($1, $2, 'u1', 'email', 'New calendar event: One')`, [ada, events[0]!.id]);
  await db.query('INSERT INTO notion_connections (user_id, high_water_mark) VALUES ($1, now())', [ada]);
  // A local change waiting to be pushed (refused once), and the conflict settled before it (migration 0016).
  await db.query(
    `INSERT INTO notion_pages (user_id, notion_page_id, title, properties, last_edited_time, pending_properties, pending_archived, pending_base, pending_since, push_error, conflict)
     VALUES ($1, 'p-1', 'Kale', '{"Price":{"number":2.5},"Tags":["a","b"]}', now(), '{"Price":{"number":3}}', true, now() - interval '1 hour', now(),
             'Price is expected to be number.', '{"policy":"notion-wins","notion_changed":["Name"],"discarded":{"side":"local","properties":{"Name":{"title":[]}}}}')`,
    [ada],
  );
  await db.query(`INSERT INTO daily_summary_deliveries (user_id, summary_date, status, message_id, claimed_at, sent_at) VALUES ($1, '2027-03-01', 'sent', '<m@x>', now(), now())`, [ada]);
}

const env = (databaseUrl: string, dataRoot = userData) => ({
  DATABASE_URL: databaseUrl,
  BGTASK_FILE_ROOTS: base,
  BGTASK_BACKUP_DIR: backups,
  BGTASK_USER_DATA_ROOT: dataRoot,
});
async function tableRows(db: pg.Pool, table: string): Promise<unknown[]> {
  const { rows } = await db.query(`SELECT row_to_json(t) AS r FROM ${table} t`);
  return rows.map((r) => r.r).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) out[relative(root, path)] = sha256(readFileSync(path));
    }
  };
  walk(root);
  return out;
}
const archives = () => readdirSync(backups).filter((f) => f.endsWith('.tar.gz')).sort();

describe('file.backup-user-data / file.restore-user-data', () => {
  let archive: string;

  it('writes a gzipped tar with a manifest, the tables as JSON lines and the files, plus a sha256 sidecar', async () => {
    const exit = await runRunner(['run', 'file.backup-user-data'], { ...env(sourceUrl), BGTASK_RUN_ID: 'backup-1' });
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ tables: 10, rows: 16, files: 3, entries_skipped: 1, backups_removed: 0 });
    archive = archives()[0]!;
    expect(archive).toMatch(/^user-data-\d{8}T\d{6}Z-backup-1\.tar\.gz$/);
    const path = join(backups, archive!);
    expect(exit.result?.summary?.backup_location).toBe(path);
    expect(exit.result?.summary?.backup_size_bytes).toBe(statSync(path).size);
    const digest = sha256(readFileSync(path));
    expect(readFileSync(`${path}.sha256`, 'utf8')).toBe(`${digest}  ${archive}\n`);
    const entries: string[] = [];
    await list({ file: path, onReadEntry: (e) => entries.push(e.path) });
    expect(entries).toEqual(expect.arrayContaining(['manifest.json', 'db/users.jsonl', 'db/notion_pages.jsonl', 'files/1/notes/2027/jan.md', 'files/1/avatar.png', 'files/2/empty.txt']));
    expect(entries.some((e) => e.includes('escape') || e.includes('secrets'))).toBe(false);
    expect(readdirSync(backups).filter((f) => f.startsWith('.'))).toEqual([]); // no staging left behind
  });

  it('restores into an EMPTY freshly migrated database and directory, row by row and file by file', async () => {
    const targetUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_target'));
    const target = testPool(targetUrl);
    const restored = join(base, 'restored');
    try {
      // Two rows per statement: full batches and a last partial one.
      const exit = await runRunner(['run', 'file.restore-user-data', '--params', JSON.stringify({ archive, batchRows: 2 })], env(targetUrl, restored));
      expect(exit.code, exit.stdout).toBe(0);
      expect(exit.result?.summary).toMatchObject({ archive, tables: 10, rows: 16, files: 3 });
      for (const table of TABLES) expect(await tableRows(target, table), table).toEqual(await tableRows(source, table));
      expect(tree(restored)).toEqual(tree(userData));
      expect(existsSync(join(restored, '2/escape'))).toBe(false);
      // Identity sequences continue after the restored ids.
      const { rows } = await target.query<{ id: string }>("INSERT INTO users (email) VALUES ('new@example.org') RETURNING id");
      const { rows: max } = await source.query<{ m: string }>('SELECT max(id) AS m FROM users');
      expect(Number(rows[0]!.id)).toBeGreaterThan(Number(max[0]!.m));

      // Restoring again into the now non-empty database is refused.
      const again = await runRunner(['run', 'file.restore-user-data'], env(targetUrl, join(base, 'restored-2')));
      expect(again.code).toBe(2);
      expect(again.result?.message).toContain('refusing to restore into a database that already has');
    } finally {
      await target.end();
    }
  });

  it('completes a restore that was stopped while copying files, and refuses a root holding anything else', async () => {
    const targetUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_resume'));
    const target = testPool(targetUrl);
    const restored = join(base, 'restored-resume');
    try {
      // What a restore killed while copying leaves: some files in place, one half-copied, no rows.
      mkdirSync(join(restored, '1/notes/2027'), { recursive: true });
      writeFileSync(join(restored, '1/notes/2027/jan.md'), readFileSync(join(userData, '1/notes/2027/jan.md')));
      writeFileSync(join(restored, '1/avatar.png.restore-partial'), 'half');
      const exit = await runRunner(['run', 'file.restore-user-data', '--params', JSON.stringify({ archive })], env(targetUrl, restored));
      expect(exit.code, exit.stdout).toBe(0);
      expect(tree(restored)).toEqual(tree(userData));
      for (const table of TABLES) expect(await tableRows(target, table), table).toEqual(await tableRows(source, table));

      // A file no restore of this archive writes: refused, nothing touched.
      const otherUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_foreign'));
      const other = join(base, 'restored-foreign');
      mkdirSync(other);
      writeFileSync(join(other, 'mine.txt'), 'keep me');
      const refused = await runRunner(['run', 'file.restore-user-data', '--params', JSON.stringify({ archive })], env(otherUrl, other));
      expect(refused.code).toBe(2);
      expect(refused.result?.message).toBe(`refusing to restore into the non-empty user-data root ${other}: it holds a file this archive does not restore (mine.txt)`);
      expect(readdirSync(other)).toEqual(['mine.txt']);
    } finally {
      await target.end();
    }
  });

  it("takes for `latest` the newest archive that has its sidecar, not one a killed backup left without", async () => {
    const targetUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_latest'));
    const target = testPool(targetUrl);
    const orphan = 'user-data-20991231T235959Z-killed.tar.gz';
    writeFileSync(join(backups, orphan), readFileSync(join(backups, archive!)));
    try {
      const exit = await runRunner(['run', 'file.restore-user-data', '--dry-run'], env(targetUrl, join(base, 'restored-latest')));
      expect(exit.code, exit.stdout).toBe(0);
      expect(exit.result?.summary).toMatchObject({ archive });
      // Named explicitly, it is refused for want of its checksum.
      const named = await runRunner(['run', 'file.restore-user-data', '--dry-run', '--params', JSON.stringify({ archive: orphan })], env(targetUrl, join(base, 'restored-latest')));
      expect(named.code).toBe(2);
      expect(named.result?.message).toMatch(`archive ${orphan} has no readable checksum file ${orphan}.sha256: ENOENT`);
    } finally {
      rmSync(join(backups, orphan), { force: true });
      await target.end();
    }
  });

  it('refuses a corrupted archive (checksum mismatch) with exit 2 and restores nothing', async () => {
    const targetUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_corrupt'));
    const target = testPool(targetUrl);
    const copy = archive!.replace('backup-1', 'backup-corrupt');
    const bytes = readFileSync(join(backups, archive!));
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(join(backups, copy), bytes);
    writeFileSync(join(backups, `${copy}.sha256`), readFileSync(join(backups, `${archive}.sha256`), 'utf8').replace(archive!, copy));
    try {
      const exit = await runRunner(['run', 'file.restore-user-data', '--params', JSON.stringify({ archive: copy })], env(targetUrl, join(base, 'restored-3')));
      expect(exit.code, exit.stdout).toBe(2);
      expect(exit.result?.message).toMatch(new RegExp(`^checksum mismatch: ${copy.replaceAll('.', '\\.')} has sha256 [0-9a-f]{64}, ${copy.replaceAll('.', '\\.')}\\.sha256 says [0-9a-f]{64}$`));
      expect((await target.query('SELECT 1 FROM users')).rowCount).toBe(0);
      expect(existsSync(join(base, 'restored-3'))).toBe(false);
    } finally {
      rmSync(join(backups, copy));
      rmSync(join(backups, `${copy}.sha256`));
      await target.end();
    }
  });

  /**
   * A copy of the first archive, tagged `tag`, with its unpacked members and manifest changed by
   * `edit` (the manifest written back after it), and a sidecar that matches.
   */
  async function craftedArchive(tag: string, edit: (unpacked: string, manifest: Manifest) => void): Promise<string> {
    const crafted = archive!.replace('backup-1', tag);
    const unpacked = mkdtempSync(join(base, 'unpacked-'));
    try {
      await extract({ file: join(backups, archive!), cwd: unpacked });
      const manifest = JSON.parse(readFileSync(join(unpacked, 'manifest.json'), 'utf8')) as Manifest;
      edit(unpacked, manifest);
      writeFileSync(join(unpacked, 'manifest.json'), JSON.stringify(manifest));
      await create({ gzip: true, file: join(backups, crafted), cwd: unpacked }, readdirSync(unpacked));
      writeFileSync(join(backups, `${crafted}.sha256`), `${sha256(readFileSync(join(backups, crafted)))}  ${crafted}\n`);
      return crafted;
    } finally {
      rmSync(unpacked, { recursive: true, force: true });
    }
  }
  /** A copy of the first archive with its users rows changed by `edit` (and its migrations by `migrations`), checksums made to match. */
  function archiveWithUsers(tag: string, edit: (row: Record<string, unknown>) => Record<string, unknown>, migrations?: (m: string[]) => string[]): Promise<string> {
    return craftedArchive(tag, (unpacked, manifest) => {
      const usersFile = join(unpacked, 'db/users.jsonl');
      const text = readFileSync(usersFile, 'utf8').split('\n').filter(Boolean).map((l) => `${JSON.stringify(edit(JSON.parse(l)))}\n`).join('');
      writeFileSync(usersFile, text);
      manifest.tables.find((t) => t.table === 'users')!.sha256 = sha256(text);
      if (migrations) manifest.migrations = migrations(manifest.migrations);
    });
  }
  const removeArchive = (name: string) => {
    rmSync(join(backups, name), { force: true });
    rmSync(join(backups, `${name}.sha256`), { force: true });
  };

  it('refuses an archive whose manifest names a path outside it (exit 2), and writes nothing outside', async () => {
    const targetUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_escape'));
    const target = testPool(targetUrl);
    // A file beside the archives, named by the manifest with its true checksum: were the path
    // followed, it would pass every check and be copied two levels above the target.
    const planted = join(backups, 'planted.txt');
    writeFileSync(planted, 'planted');
    const crafted = await craftedArchive('backup-escape', (_unpacked, manifest) => {
      manifest.files.push({ path: '../../planted.txt', size: 7, sha256: sha256('planted'), mtimeMs: Date.now() });
    });
    try {
      const restored = join(base, 'restored-escape', 'data');
      const exit = await runRunner(['run', 'file.restore-user-data', '--params', JSON.stringify({ archive: crafted })], env(targetUrl, restored));
      expect(exit.code, exit.stdout).toBe(2);
      expect(exit.result?.message).toBe(`archive ${crafted} names paths outside it in its manifest: files/../../planted.txt`);
      expect((await target.query('SELECT 1 FROM users')).rowCount).toBe(0);
      expect(existsSync(join(base, 'planted.txt'))).toBe(false);
    } finally {
      rmSync(planted, { force: true });
      removeArchive(crafted);
      await target.end();
    }
  });

  it('restores the tables parents first, whatever order the manifest lists them in', async () => {
    const targetUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_order'));
    const target = testPool(targetUrl);
    // As a runner from before 0015 lists them (notifications before calendar_feeds and
    // calendar_events), with the rows of a database migrated since: a notification names its event.
    const older = await craftedArchive('backup-order', (_unpacked, manifest) => {
      const [notifications] = manifest.tables.splice(manifest.tables.findIndex((t) => t.table === 'notifications'), 1);
      manifest.tables.splice(manifest.tables.findIndex((t) => t.table === 'calendar_feeds'), 0, notifications!);
    });
    try {
      const exit = await runRunner(['run', 'file.restore-user-data', '--params', JSON.stringify({ archive: older })], env(targetUrl, join(base, 'restored-order')));
      expect(exit.code, exit.stdout).toBe(0);
      for (const table of TABLES) expect(await tableRows(target, table), table).toEqual(await tableRows(source, table));
      expect((await target.query('SELECT count(*)::int AS n FROM notifications WHERE calendar_event_id IS NOT NULL')).rows).toEqual([{ n: 1 }]);
    } finally {
      removeArchive(older);
      await target.end();
    }
  });

  it("restores an archive from before calendar_event_uids: filled from the restored events, so the next sync announces none of them", async () => {
    const targetUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_uids'));
    const target = testPool(targetUrl);
    const older = await craftedArchive('backup-uids', (unpacked, manifest) => {
      manifest.tables = manifest.tables.filter((t) => t.table !== 'calendar_event_uids');
      rmSync(join(unpacked, 'db/calendar_event_uids.jsonl'));
      manifest.migrations = manifest.migrations.filter((m) => !m.startsWith('0017'));
    });
    try {
      const exit = await runRunner(['run', 'file.restore-user-data', '--params', JSON.stringify({ archive: older })], env(targetUrl, join(base, 'restored-uids')));
      expect(exit.code, exit.stdout).toBe(0);
      expect(exit.result?.summary).toMatchObject({ tables: 9, rows: 13 });
      const uids = await target.query('SELECT user_id::int, calendar_id, uid FROM calendar_event_uids ORDER BY uid');
      const ada = Number((await target.query<{ id: string }>("SELECT id FROM users WHERE email = 'ada@example.org'")).rows[0]!.id);
      expect(uids.rows).toEqual([
        { user_id: ada, calendar_id: 'default', uid: 'u1' },
        { user_id: ada, calendar_id: 'default', uid: 'u2' },
      ]);
      for (const table of TABLES.filter((t) => t !== 'calendar_event_uids')) expect(await tableRows(target, table), table).toEqual(await tableRows(source, table));
    } finally {
      removeArchive(older);
      await target.end();
    }
  });

  it("restores an archive from before notifications.calendar_event_uid: filled from the events the notifications name", async () => {
    const targetUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_event_uids'));
    const target = testPool(targetUrl);
    const older = await craftedArchive('backup-event-uids', (unpacked, manifest) => {
      const file = join(unpacked, 'db/notifications.jsonl');
      const text = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => {
        const { calendar_event_uid: _dropped, ...row } = JSON.parse(l) as Record<string, unknown>;
        return `${JSON.stringify(row)}\n`;
      }).join('');
      writeFileSync(file, text);
      manifest.tables.find((t) => t.table === 'notifications')!.sha256 = sha256(text);
      manifest.migrations = manifest.migrations.filter((m) => !m.startsWith('0018'));
    });
    try {
      const exit = await runRunner(['run', 'file.restore-user-data', '--params', JSON.stringify({ archive: older })], env(targetUrl, join(base, 'restored-event-uids')));
      expect(exit.code, exit.stdout).toBe(0);
      expect((await target.query('SELECT title, calendar_event_uid FROM notifications ORDER BY id')).rows).toEqual([
        { title: 'T', calendar_event_uid: null },
        { title: 'New calendar event: One', calendar_event_uid: 'u1' },
      ]);
      for (const table of TABLES) expect(await tableRows(target, table), table).toEqual(await tableRows(source, table));
    } finally {
      removeArchive(older);
      await target.end();
    }
  });

  it('restores an archive from before a NOT NULL DEFAULT column was added: the column gets its default', async () => {
    const targetUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_older'));
    const target = testPool(targetUrl);
    // As written before 0010_daily_summary: users rows without daily_summary_opt_in.
    const older = await archiveWithUsers('backup-older', ({ daily_summary_opt_in: _dropped, ...row }) => row, (m) => m.filter((n) => !n.startsWith('0010') && !n.startsWith('0011')));
    try {
      const exit = await runRunner(['run', 'file.restore-user-data', '--params', JSON.stringify({ archive: older })], env(targetUrl, join(base, 'restored-older')));
      expect(exit.code, exit.stdout).toBe(0);
      const { rows } = await target.query('SELECT email, display_name, daily_summary_opt_in FROM users ORDER BY id');
      expect(rows).toEqual([
        { email: 'ada@example.org', display_name: 'Ada', daily_summary_opt_in: false },
        { email: 'bob@example.org', display_name: null, daily_summary_opt_in: false },
      ]);
      for (const table of TABLES.filter((t) => t !== 'users')) expect(await tableRows(target, table), table).toEqual(await tableRows(source, table));
    } finally {
      removeArchive(older);
      await target.end();
    }
  });

  it('refuses, before writing anything, an archive holding columns the database lacks (a newer schema), naming them', async () => {
    const targetUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_newer'));
    const target = testPool(targetUrl);
    const newer = await archiveWithUsers('backup-newer', (row) => ({ ...row, nickname: 'Ace', locale: 'de' }), (m) => [...m, '0099_user_nicknames']);
    const restored = join(base, 'restored-newer');
    try {
      const exit = await runRunner(['run', 'file.restore-user-data', '--params', JSON.stringify({ archive: newer })], env(targetUrl, restored));
      expect(exit.code, exit.stdout).toBe(2);
      expect(exit.result?.message).toBe(
        `archive ${newer} holds columns this database lacks, whose values a restore would lose: users (nickname, locale); it was written after migrations this database has not applied: 0099_user_nicknames`,
      );
      expect((await target.query('SELECT 1 FROM users')).rowCount).toBe(0);
      expect(existsSync(restored)).toBe(false);
    } finally {
      removeArchive(newer);
      await target.end();
    }
  });

  it("removes what killed runs left (staging copies, half-written sidecars) once older than any live run, and nothing younger", async () => {
    const weekAndADay = new Date(Date.now() - 8 * 24 * 3600 * 1000);
    const plant = (name: string, dir: boolean, old: boolean) => {
      const at = join(backups, name);
      if (dir) {
        mkdirSync(join(at, 'files'), { recursive: true });
        writeFileSync(join(at, 'files/copy'), 'a copy');
      } else {
        writeFileSync(at, 'half');
      }
      if (old) utimesSync(at, weekAndADay, weekAndADay);
      return at;
    };
    const old = [
      plant('.staging-old1', true, true),
      plant('.restore-old2', true, true),
      plant('user-data-20260101T000000Z-x.tar.gz.sha256.partial', false, true),
      plant('user-data-20260101T000000Z-y.tar.gz', false, true), // renamed into place, killed before its sidecar
    ];
    const live = plant('.staging-live', true, false);
    const finishing = plant('user-data-20260102T000000Z-z.tar.gz', false, false);
    try {
      const exit = await runRunner(['run', 'file.backup-user-data'], { ...env(sourceUrl), BGTASK_RUN_ID: 'backup-leftovers' });
      expect(exit.code, exit.stdout).toBe(0);
      expect(exit.result?.summary).toMatchObject({ leftovers_removed: 4, backups_removed: 0 });
      for (const at of old) expect(existsSync(at), at).toBe(false);
      expect(existsSync(join(live, 'files/copy'))).toBe(true);
      expect(existsSync(finishing)).toBe(true);
    } finally {
      rmSync(live, { recursive: true, force: true });
      rmSync(finishing, { force: true });
      for (const f of archives().filter((a) => a.includes('backup-leftovers'))) {
        rmSync(join(backups, f));
        rmSync(join(backups, `${f}.sha256`));
      }
    }
  });

  it('keeps only the newest `keep` archives, counting only whole ones', async () => {
    // An archive without its sidecar yet (a backup finishing, or killed a moment ago) is neither
    // counted nor removed by retention; the leftover sweep takes it once it is a week old.
    const finishing = join(backups, 'user-data-20260102T000000Z-finishing.tar.gz');
    writeFileSync(finishing, 'not yet');
    for (let i = 2; i <= 5; i++) {
      await new Promise((r) => setTimeout(r, 1100)); // archive names carry the second
      const exit = await runRunner(['run', 'file.backup-user-data', '--params', '{"keep":3}'], { ...env(sourceUrl), BGTASK_RUN_ID: `backup-${i}` });
      expect(exit.code, exit.stdout).toBe(0);
    }
    expect(existsSync(finishing)).toBe(true);
    rmSync(finishing);
    expect(archives().map((a) => /-(backup-\d)\.tar\.gz$/.exec(a)?.[1])).toEqual(['backup-3', 'backup-4', 'backup-5']);
    expect(readdirSync(backups).filter((f) => f.endsWith('.sha256'))).toHaveLength(3);
  });

  // Several batches: a table an exact multiple of batchRows (200 notifications), one not (130
  // users), the rest a single short batch; each read whole and in key order.
  it('reads tables larger than a batch whole and in key order', async () => {
    const bigUrl = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_backup_big'));
    const big = testPool(bigUrl);
    const bigBackups = join(base, 'backups-big');
    try {
      await big.query("INSERT INTO users (email, display_name) SELECT 'u' || i || '@example.org', 'User ' || i FROM generate_series(1, 130) i");
      await big.query("INSERT INTO notifications (user_id, channel, title) SELECT 1 + i % 130, 'email', 'n' || i FROM generate_series(1, 200) i");
      // Ids out of insertion order: the dump follows the key, not the heap.
      await big.query("UPDATE users SET display_name = 'moved' WHERE id % 7 = 0");
      const exit = await runRunner(['run', 'file.backup-user-data', '--params', '{"batchRows":100}'], { ...env(bigUrl), BGTASK_BACKUP_DIR: bigBackups, BGTASK_RUN_ID: 'backup-big' });
      expect(exit.code, exit.stdout).toBe(0);
      expect(exit.result?.summary).toMatchObject({ rows: 330 });
      const unpacked = mkdtempSync(join(base, 'unpacked-'));
      try {
        await extract({ file: exit.result!.summary!.backup_location as string, cwd: unpacked });
        for (const table of ['users', 'notifications']) {
          const { rows } = await big.query<{ j: string }>(`SELECT row_to_json(t)::text AS j FROM ${table} t ORDER BY id`);
          expect(readFileSync(join(unpacked, `db/${table}.jsonl`), 'utf8'), table).toBe(rows.map((r) => `${r.j}\n`).join(''));
        }
      } finally {
        rmSync(unpacked, { recursive: true, force: true });
      }
    } finally {
      rmSync(bigBackups, { recursive: true, force: true });
      await big.end();
    }
  });

  it('refuses a backup directory outside BGTASK_FILE_ROOTS (exit 2)', async () => {
    const exit = await runRunner(['run', 'file.backup-user-data'], { ...env(sourceUrl), BGTASK_FILE_ROOTS: join(base, 'elsewhere') });
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toContain('is outside the allowed roots');
  });
});
