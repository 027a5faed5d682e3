/**
 * The user-data backup format: a gzipped tar holding manifest.json, db/<table>.jsonl (one
 * row_to_json per line) and files/<path> (the user-data tree), with a sha256 for every member in
 * the manifest and a sha256sum-style sidecar (<archive>.sha256) for the archive as a whole.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { lstat, readdir, rm, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { createInterface } from 'node:readline';

export const FORMAT = 'bgtask-user-data';
export const FORMAT_VERSION = 1;
export const ARCHIVE_PATTERN = /^user-data-\d{8}T\d{6}Z-[A-Za-z0-9._-]+\.tar\.gz$/;

/**
 * The user tables in restore order (parents before children: notifications name ai_tasks and
 * calendar_events; every table names users), with their key for a stable order. user_sessions are
 * left out on purpose: they hold bearer tokens and expire anyway.
 */
export const USER_TABLES = [
  { table: 'users', orderBy: 'id' },
  { table: 'ai_tasks', orderBy: 'id' },
  { table: 'ai_task_results', orderBy: 'id' },
  { table: 'calendar_feeds', orderBy: 'id' },
  { table: 'calendar_events', orderBy: 'id' },
  { table: 'calendar_event_uids', orderBy: 'user_id, calendar_id, uid' },
  { table: 'notifications', orderBy: 'id' },
  { table: 'notion_connections', orderBy: 'user_id' },
  { table: 'notion_pages', orderBy: 'id' },
  { table: 'daily_summary_deliveries', orderBy: 'user_id, summary_date' },
] as const;

/**
 * How a restore fills a user table that an archive written before the table's migration lacks:
 * from the rows it restored, as that migration filled it. Left empty, calendar_event_uids (0017)
 * would have the next sync announce every event the user already had as new.
 */
export const FILLED_WHEN_ABSENT: Readonly<Record<string, string>> = {
  calendar_event_uids: 'INSERT INTO calendar_event_uids (user_id, calendar_id, uid) SELECT DISTINCT user_id, calendar_id, uid FROM calendar_events',
};

/**
 * How a restore fills a column that the rows of an archive written before the column's migration
 * lack, as that migration filled it. Left NULL, notifications.calendar_event_uid (0018) would let
 * a pending notification of an event gone since go out.
 */
export const COLUMNS_FILLED_WHEN_ABSENT: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  notifications: {
    calendar_event_uid: 'UPDATE notifications n SET calendar_event_uid = e.uid FROM calendar_events e WHERE e.id = n.calendar_event_id',
  },
};

/**
 * The archive's tables in USER_TABLES order, whatever order its manifest lists them in: the
 * foreign keys of the database restored into decide it, and an archive written by an older runner
 * lists its tables in that runner's order (notifications before calendar_events before 0015).
 */
export function inRestoreOrder<T extends { table: string }>(tables: readonly T[]): T[] {
  const rank = new Map<string, number>(USER_TABLES.map(({ table }, i) => [table, i]));
  return [...tables].sort((a, b) => rank.get(a.table)! - rank.get(b.table)!);
}

export interface Manifest {
  format: typeof FORMAT;
  version: number;
  createdAt: string;
  runId: string;
  migrations: string[];
  tables: { table: string; file: string; rows: number; sha256: string }[];
  files: { path: string; size: number; sha256: string; mtimeMs: number }[];
}

/**
 * What a killed run (OOM, the hard timeout, a node lost) leaves in the backup directory: a
 * backup's staging copy of everything and its half-written sidecar, a restore's unpacked archive.
 */
export const LEFTOVER_PATTERN = /^(\.staging-|\.restore-)|\.sha256\.partial$/;
/** No run lives longer than this (the CRD's limit on timeoutSeconds: a week). */
const LONGEST_RUN_MS = 7 * 24 * 3600 * 1000;

/**
 * The archives of a directory listing that are whole, oldest first: a backup renames its archive
 * into place, then writes its sidecar, so one without a sidecar is from a run killed in between
 * (or still finishing), and is neither restored as `latest` nor counted as a kept backup.
 */
export function completeArchives(names: readonly string[]): string[] {
  const present = new Set(names);
  return names.filter((n) => ARCHIVE_PATTERN.test(n) && present.has(`${n}.sha256`)).sort();
}

/**
 * Removes leftovers older than any live run can be — staging copies, half-written sidecars and
 * archives that never got their sidecar; returns their names.
 */
export async function removeLeftovers(dir: string, now: Date): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(dir);
  const complete = new Set(completeArchives(names));
  const orphans = names.filter((n) => ARCHIVE_PATTERN.test(n) && !complete.has(n));
  for (const name of [...names.filter((n) => LEFTOVER_PATTERN.test(n)), ...orphans]) {
    const { mtimeMs } = await stat(join(dir, name));
    if (now.getTime() - mtimeMs <= LONGEST_RUN_MS) continue;
    await rm(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The rows of a table dump: one JSON object per line (row_to_json escapes newlines inside). */
export async function countLines(path: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(path)) {
    for (let i = (chunk as Buffer).indexOf(10); i !== -1; i = (chunk as Buffer).indexOf(10, i + 1)) lines++;
  }
  return lines;
}

/**
 * The columns a table dump holds: every key of its rows, in the order first seen. A line that is
 * not a JSON object is an error naming the file and line.
 */
export async function dumpColumns(path: string): Promise<string[]> {
  const columns = new Set<string>();
  let line = 0;
  for await (const text of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    line++;
    if (!text) continue;
    let row: unknown;
    try {
      row = JSON.parse(text);
    } catch (err) {
      throw new Error(`${basename(path)} line ${line} is not JSON`, { cause: err });
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new Error(`${basename(path)} line ${line} is not a JSON object`);
    for (const key of Object.keys(row)) columns.add(key);
  }
  return [...columns];
}

/** `<hex>  <name>` as sha256sum writes it, so `sha256sum -c` checks the archive too. */
export function sidecarLine(hex: string, name: string): string {
  return `${hex}  ${name}\n`;
}

export function parseSidecar(text: string): string | undefined {
  return /^([0-9a-f]{64})\s/.exec(text)?.[1];
}

/**
 * A file written chunk by chunk, waiting when the stream is full. A write error (a full disk)
 * rejects the pending or next write, or the close: without a listener it would escape the task's
 * promise, and a wait for 'drain' would never end.
 */
export function openChunkedFile(path: string): { write(text: string): Promise<void>; close(): Promise<void> } {
  const out = createWriteStream(path);
  const settled = finished(out);
  settled.catch(() => undefined); // observed by write() and close(); not an unhandled rejection meanwhile
  return {
    async write(text) {
      if (!out.write(text)) await Promise.race([once(out, 'drain'), settled]);
      if (out.errored) throw out.errored;
    },
    async close() {
      out.end();
      await settled;
    },
  };
}

/** A restored file is written under its name plus this, then renamed into place. */
export const PARTIAL_SUFFIX = '.restore-partial';

/**
 * The files under `root` (relative paths, at most `limit`) that a restore of `manifest` would not
 * write: anything but this archive's files and their half-copied `PARTIAL_SUFFIX` versions. Empty
 * for an empty root, and for one an interrupted restore of the same archive left behind.
 */
export async function filesNotRestoredBy(root: string, manifest: Pick<Manifest, 'files'>, limit = 10): Promise<string[]> {
  const restored = new Set(manifest.files.flatMap((f) => [f.path, `${f.path}${PARTIAL_SUFFIX}`]));
  const foreign: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (foreign.length >= limit) return;
      const full = join(dir, entry.name);
      const rel = relative(root, full);
      if (entry.isDirectory()) await walk(full);
      else if (!entry.isFile() || !restored.has(rel)) foreign.push(rel);
    }
  };
  if ((await lstat(root)).isDirectory()) await walk(root);
  return foreign;
}
