// Every task of the registry, run once as a real Job of the task-runner image in the kind cluster
// (no operator): in-cluster Postgres and Redis from the platform's images, the local test servers
// (SMTP, ICS feeds, Notion, an OpenAI-compatible LLM) as in-cluster Services, the file tasks' roots
// on a volume several Jobs share. Each run reports into its own BackgroundTask as a ServiceAccount
// that may patch that one object's status, in a namespace enforcing the restricted Pod Security
// profile. Each test checks the exit code, the counters in status.lastRun against what was seeded,
// and the effect in the real service (rows, delivered messages, files).
//
// The runs go in three waves: first every task that does not disturb another's counts, at once;
// then the backup (it must read a database nobody writes to) together with optimize-database
// (which vacuums the sessions cleanup-old-sessions deleted); then the restore of that backup into
// an empty database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_GROUP, GROUP_VERSION, KIND } from '../../crds/constants.ts';
import { loadRegistry } from '../../task-runner/registry.ts';
import { USER_TABLES } from '../../task-runner/tasks/file/user-data-archive.ts';
import { exposeHostServer, kindGateway, kindNode, nodeShell, nodeVolume, type HostService, type NodeVolume } from '../support/cluster-host.ts';
import { calendar, startFakeIcs, vevent, type FakeIcs } from '../support/fake-ics.ts';
import { startFakeNotion, type FakeNotion } from '../support/fake-notion.ts';
import { completionFor, startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { startFakeSmtp, type FakeSmtp } from '../support/fake-smtp.ts';
import { createNamespace, deleteNamespace, installCrd, kubectl, kubectlJson, waitFor } from '../support/kube.ts';
import { clearOfLocalMidnight } from '../support/local-midnight.ts';
import {
  databaseEnv,
  deployServices,
  getBackgroundTask,
  psql,
  redisCli,
  redisEnv,
  runJob,
  runnerJob,
  type EnvVar,
  type Terminated,
} from '../support/runner-cluster.ts';

const registry = await loadRegistry({});
/** Every task the runner knows (no plugins): each must have a scenario below. */
const TASKS = registry.tasks.map((t) => t.name);

const RESTORE_DB = 'bgtask_restore';
const RUNNER_UID = 10001;
const DATA = '/data';
const FROM = 'assistant@bgtask.example';
const NOTION_TOKEN = 'secret_inCluster7Qx2';
const Q = 'bgtask:{email}';
const DAY = 86_400_000;

let ns: string;
let node: string;
let volume: NodeVolume | undefined;
/** Settles when every part of the setup has succeeded or failed: afterAll then removes what was made. */
let setupSettled: Promise<unknown> = Promise.resolve();
let smtp: FakeSmtp;
let ics: FakeIcs;
let notion: FakeNotion;
let llm: FakeOpenAI;
const exposed: HostService[] = [];
/** Users by e-mail local part: ada, bob, cy. */
const users: Record<string, string> = {};

// ---------------------------------------------------------------------------------------------
// What each task's run is given, what it must count, and what it must have done.

interface Outcome {
  end?: Terminated & { podName: string };
  error?: unknown;
}
interface Scenario {
  wave: 1 | 2 | 3;
  env: () => EnvVar[];
  params?: Record<string, unknown>;
  /** Mount the shared volume at /data. */
  files?: boolean;
  /** The database its task_runs row goes to (tasks that need Postgres). */
  database?: string;
  summary: () => Record<string, unknown>;
  effect: (lastRun: any) => Promise<void>;
}

const bgtName = (task: string) => task.replace('.', '-');
const jobName = (task: string) => `${bgtName(task)}-1`;
const fileEnv = (vars: Record<string, string>): EnvVar[] => [{ name: 'BGTASK_FILE_ROOTS', value: DATA }, ...Object.entries(vars).map(([name, value]) => ({ name, value }))];
const smtpEnv = (): EnvVar[] => [
  { name: 'SMTP_URL', value: 'smtp://smtp:25' },
  { name: 'EMAIL_FROM', value: FROM },
];
const llmEnv = (): EnvVar[] => [
  { name: 'LLM_BASE_URL', value: 'http://llm/v1' },
  { name: 'LLM_API_KEY', value: 'sk-in-cluster' },
];

// Seeded files: paths under the volume, sizes, ages. Old enough to go means older than the task's cutoff.
interface SeedFile {
  path: string;
  bytes: number;
  ageDays: number;
}
const TEMP_FILES: (SeedFile & { goes: boolean })[] = [
  { path: 'tmp/uploads/chunk-001.part', bytes: 4096, ageDays: 3, goes: true },
  { path: 'tmp/uploads/chunk-002.part', bytes: 4096, ageDays: 3, goes: true },
  { path: 'tmp/uploads/chunk-003.part', bytes: 4096, ageDays: 0, goes: false },
  { path: 'tmp/exports/report-2026-q3.csv.tmp', bytes: 10_000, ageDays: 5, goes: true },
  { path: 'tmp/exports/current.csv.tmp', bytes: 300, ageDays: 0, goes: false },
  { path: 'tmp/thumbs/a1.png', bytes: 2500, ageDays: 2, goes: true },
  { path: 'tmp/thumbs/a2.png', bytes: 2500, ageDays: 2, goes: true },
  { path: 'tmp/session-cache.json', bytes: 777, ageDays: 10, goes: true },
];
const LOG_FILES: (SeedFile & { goes: boolean })[] = [
  // The live log is never a candidate, however old.
  { path: 'logs/assistant.log', bytes: 5000, ageDays: 60, goes: false },
  { path: 'logs/assistant.log.1', bytes: 3000, ageDays: 40, goes: true },
  { path: 'logs/assistant.log.2.gz', bytes: 1200, ageDays: 45, goes: true },
  { path: 'logs/assistant.log.3', bytes: 900, ageDays: 2, goes: false },
  { path: 'logs/worker.log-20260901.gz', bytes: 800, ageDays: 50, goes: true },
  { path: 'logs/scheduler.2026-09-01.log', bytes: 1500, ageDays: 50, goes: true },
  { path: 'logs/README.txt', bytes: 100, ageDays: 60, goes: false },
];
// Old files: were a symlink out of the temp root followed, they would be removed.
const USER_FILES: SeedFile[] = [
  { path: 'user-data/ada/notes/2026-11.md', bytes: 1800, ageDays: 3 },
  { path: 'user-data/ada/photos/cat.jpg', bytes: 20_000, ageDays: 30 },
  { path: 'user-data/bob/todo.txt', bytes: 240, ageDays: 1 },
  { path: 'user-data/bob/docs/contract.pdf', bytes: 12_345, ageDays: 90 },
];
// Last weeks' backups: with keep 2, the oldest goes once the new one is written.
const OLD_BACKUPS = ['user-data-20200105T010000Z-weekly.tar.gz', 'user-data-20200112T010000Z-weekly.tar.gz'];

const sum = (files: SeedFile[]) => files.reduce((n, f) => n + f.bytes, 0);
const below = (files: SeedFile[], dir: string) => files.filter((f) => f.path.startsWith(`${dir}/`)).map((f) => f.path.slice(dir.length + 1));

/** Regular files and symlinks under a directory of the volume, relative, sorted. */
async function listed(dir: string): Promise<string[]> {
  const out = await nodeShell(node, `cd '${volume!.dir}/${dir}' && find . -mindepth 1 ! -type d -printf '%P\\n' | LC_ALL=C sort`);
  return out.split('\n').filter(Boolean);
}
/** Each file under a directory of the volume: path, size, mtime (s), sha256. */
async function fingerprints(dir: string): Promise<string[]> {
  const out = await nodeShell(
    node,
    `cd '${volume!.dir}/${dir}' && find . -type f -printf '%P\\n' | LC_ALL=C sort | while read -r f; do echo "$f $(stat -c '%s %Y' "$f") $(sha256sum < "$f" | cut -c1-64)"; done`,
  );
  return out.split('\n').filter(Boolean);
}

/** Rows of every user table, as JSON text, in one database (one psql call). */
async function tableDump(database: string): Promise<Record<string, string>> {
  const sql = USER_TABLES.map(({ table, orderBy }) => {
    const order = orderBy.split(',').map((c) => `t.${c.trim()}`).join(', ');
    return `SELECT '${table}', coalesce(jsonb_agg(t ORDER BY ${order}), '[]')::text FROM ${table} t`;
  }).join('\nUNION ALL ');
  const lines = (await psql(ns, sql, database)).split('\n');
  return Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf('|')), line.slice(line.indexOf('|') + 1)]));
}

// Computed while seeding, or between waves.
const seeded = {
  mailIds: [] as string[],
  duplicateId: 'receipt-2026-0001',
  notionPages: 130,
  notionArchived: 3,
  newestNotionEdit: '',
  icsEtags: {} as Record<string, string>,
  deadSessions: 0,
  backupRows: 0,
  kubernetesVersion: '',
  sourceDump: {} as Record<string, string>,
};

const SCENARIOS: Record<string, Scenario> = {
  'ai.cleanup-old-logs': {
    wave: 1,
    files: true,
    env: () => [...databaseEnv(), ...fileEnv({ BGTASK_LOG_DIR: `${DATA}/logs` })],
    summary: () => ({
      task_runs_deleted: 40,
      log_files_removed: LOG_FILES.filter((f) => f.goes).length,
      log_bytes_freed: sum(LOG_FILES.filter((f) => f.goes)),
    }),
    async effect() {
      expect(await psql(ns, "SELECT count(*) FILTER (WHERE run_id LIKE 'old-%'), count(*) FILTER (WHERE run_id LIKE 'recent-%') FROM task_runs")).toBe('0|10');
      expect(await listed('logs')).toEqual(below(LOG_FILES.filter((f) => !f.goes), 'logs').sort());
    },
  },

  'ai.process-due-tasks': {
    wave: 1,
    env: () => [...databaseEnv(), ...llmEnv()],
    summary: () => ({ tasks_processed: 3, tasks_succeeded: 3, tasks_failed: 0, tasks_left_due: 0 }),
    async effect(lastRun) {
      const due = ['Inbox triage\n\nFlag anything urgent', 'Morning briefing\n\nWeather and my first meeting', 'Remind me to call Bob\n\nAbout the offsite'];
      expect(llm.prompts().sort()).toEqual(due);
      expect(llm.requests.filter((r) => r.path === '/v1/chat/completions').every((r) => r.headers.authorization === 'Bearer sk-in-cluster')).toBe(true);
      const results = await psql(ns, `SELECT t.title || '|' || r.status || '|' || r.result FROM ai_task_results r JOIN ai_tasks t ON t.id = r.ai_task_id WHERE r.run_id = '${lastRun.runId}' ORDER BY t.title`);
      expect(results.split('\n')).toEqual(['Inbox triage|succeeded|Done: Inbox triage', 'Morning briefing|succeeded|Done: Morning briefing', 'Remind me to call Bob|succeeded|Done: Remind me to call Bob']);
      // Once: done. Recurring: due again at their next time, in their own zone. Not due, or paused: untouched.
      const rows = await psql(ns, `
        SELECT title || '|' || status || '|' || run_count || '|' || coalesce(to_char(next_run_at AT TIME ZONE timezone, 'HH24:MI'), '-') || '|' || coalesce((next_run_at > now())::text, '-')
        FROM ai_tasks ORDER BY title`);
      expect(rows.split('\n')).toEqual([
        expect.stringMatching(/^Inbox triage\|active\|1\|\d\d:05\|true$/),
        'Morning briefing|active|1|08:00|true',
        'News digest|completed|1|-|-',
        expect.stringMatching(/^Paused reminder\|paused\|0\|\d\d:\d\d\|false$/),
        'Remind me to call Bob|completed|1|-|-',
        'Weekly plan|active|0|18:30|true',
      ]);
      expect(await psql(ns, "SELECT count(*) FROM notifications WHERE channel = 'in_app' AND title IN ('Inbox triage', 'Morning briefing', 'Remind me to call Bob')")).toBe('3');
    },
  },

  'ai.test-scheduler-connection': {
    wave: 1,
    env: () => [...databaseEnv(), ...redisEnv(), ...llmEnv()],
    summary: () => ({
      checks: 4,
      postgres_ok: true,
      redis_ok: true,
      kubernetes_ok: true,
      llm_ok: true,
      llm_models: 2,
      postgres_version: expect.stringMatching(/^15\./),
      kubernetes_version: seeded.kubernetesVersion,
    }),
    async effect() {
      const models = llm.requests.filter((r) => r.method === 'GET' && r.path === '/v1/models');
      expect(models).toHaveLength(1);
      expect(models[0]!.headers.authorization).toBe('Bearer sk-in-cluster');
    },
  },

  'email.process-queue': {
    wave: 1,
    env: () => [...redisEnv(), ...smtpEnv()],
    summary: () => ({ sent: seeded.mailIds.length, duplicates_skipped: 1, failed_attempts: 0, dead_lettered: 0, released: 0, reclaimed: 0, queued_remaining: 0 }),
    async effect() {
      const delivered = smtp.received.filter((m) => !m.messageId?.startsWith('<daily-summary-') && !m.messageId?.startsWith('<notification-'));
      expect(delivered.map((m) => m.messageId).sort()).toEqual(seeded.mailIds.map((id) => `<${id}@bgtask.example>`).sort());
      const first = delivered.find((m) => m.messageId === `<${seeded.mailIds[0]}@bgtask.example>`)!;
      expect(first).toMatchObject({ from: FROM, to: ['user1@example.org'], subject: 'Your reminder #1' });
      expect(first.raw).toContain('Reminder 1 is due.');
      const [queued, processing, dead, ...sent] = await redisCli(ns, [
        ['LLEN', `${Q}:queue`],
        ['LLEN', `${Q}:processing`],
        ['LLEN', `${Q}:dead`],
        ...[...seeded.mailIds, seeded.duplicateId].map((id) => ['EXISTS', `${Q}:sent:${id}`]),
      ]);
      expect([queued, processing, dead]).toEqual(['0', '0', '0']);
      expect(sent.every((v) => v === '1')).toBe(true);
    },
  },

  'email.send-notifications': {
    wave: 1,
    env: () => [...databaseEnv(), ...smtpEnv()],
    summary: () => ({ notifications_sent: 2, notifications_refused: 0, notifications_failed: 0, notifications_deferred: 0 }),
    async effect() {
      const rows = (await psql(ns, "SELECT n.title || '|' || n.channel || '|' || n.status || '|' || n.id FROM notifications n WHERE n.ai_task_id IS NULL ORDER BY n.title")).split('\n').map((r) => r.split('|'));
      expect(rows.map((r) => r.slice(0, 3).join('|'))).toEqual(['By text|sms|pending', 'Reminder: call Ada|email|sent', 'Tomorrow|email|pending', 'Your report is ready|email|sent']);
      const id = (title: string) => rows.find((r) => r[0] === title)![3];
      const sent = smtp.received.filter((m) => m.messageId?.startsWith('<notification-'));
      expect(sent.map((m) => `${m.messageId}|${m.to.join(',')}|${m.subject}`).sort()).toEqual([
        `<notification-${id('Reminder: call Ada')}@bgtask.example>|bob@example.org|Reminder: call Ada`,
        `<notification-${id('Your report is ready')}@bgtask.example>|ada@example.org|Your report is ready`,
      ].sort());
    },
  },

  'email.send-daily-summary': {
    wave: 1,
    // Both users due at any time of day (with the default, 08:00, only those past it in their zone).
    params: { localHour: 0 },
    env: () => [...databaseEnv(), ...smtpEnv()],
    summary: () => ({ users: 2, summaries_sent: 2, already_sent: 0, summaries_failed: 0 }),
    async effect() {
      const rows = (await psql(ns, "SELECT u.email || '|' || d.status || '|' || d.message_id || '|' || d.summary_date FROM daily_summary_deliveries d JOIN users u ON u.id = d.user_id ORDER BY u.email")).split('\n');
      expect(rows.map((r) => r.split('|').slice(0, 2).join('|'))).toEqual(['ada@example.org|sent', 'bob@example.org|sent']);
      const summaries = smtp.received.filter((m) => m.messageId?.startsWith('<daily-summary-'));
      expect(summaries.map((m) => `${m.to.join(',')}|${m.messageId}`).sort()).toEqual(rows.map((r) => r.split('|')).map(([email, , id]) => `${email}|${id}`));
      for (const row of rows) {
        const [email, , id, date] = row.split('|');
        expect(id).toBe(`<daily-summary-${users[email!.split('@')[0]!]}-${date}@bgtask.example>`);
      }
      const ada = summaries.find((m) => m.to[0] === 'ada@example.org')!;
      const date = rows[0]!.split('|')[3];
      expect(ada.subject).toBe(`Your day, ${date}`);
      // Today's work calendar (the cancelled standup left out), yesterday's AI result and runs, as sent.
      const body = ada.raw.replace(/=\r?\n/g, '');
      expect(body).toContain('15:00=E2=80=9316:00  Dentist (Friedrichstr. 5)');
      expect(body).not.toContain('Standup');
      expect(body).toContain('News digest: Rates unchanged; rain in Berlin; the offsite moved to Friday.');
      const runsYesterday = await psql(ns, `SELECT count(*) FROM task_runs WHERE started_at >= ${localDay('ada@example.org', -1, '00:00')} AND started_at < ${localDay('ada@example.org', 0, '00:00')}`);
      expect(body).toContain(`Yesterday's background runs (${runsYesterday}):`);
    },
  },

  'file.backup-user-data': {
    wave: 2,
    files: true,
    params: { keep: 2 },
    env: () => [...databaseEnv(), ...fileEnv({ BGTASK_BACKUP_DIR: `${DATA}/backups`, BGTASK_USER_DATA_ROOT: `${DATA}/user-data` })],
    summary: () => ({
      tables: USER_TABLES.length,
      rows: seeded.backupRows,
      files: USER_FILES.length,
      file_bytes: sum(USER_FILES),
      backups_removed: 1,
      backup_location: expect.stringMatching(new RegExp(`^${DATA}/backups/user-data-\\d{8}T\\d{6}Z-${jobName('file.backup-user-data')}\\.tar\\.gz$`)),
      backup_size_bytes: expect.any(Number),
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    }),
    async effect(lastRun) {
      const name = String(lastRun.summary.backup_location).split('/').pop()!;
      expect(await listed('backups')).toEqual([OLD_BACKUPS[1]!, `${OLD_BACKUPS[1]}.sha256`, name, `${name}.sha256`]);
      // The archive on the volume is the size and checksum reported, and its sidecar says so to sha256sum.
      const check = await nodeShell(node, `cd '${volume!.dir}/backups' && stat -c %s '${name}' && sha256sum -c '${name}.sha256' && sha256sum < '${name}'`);
      expect(check.split('\n')).toEqual([String(lastRun.summary.backup_size_bytes), `${name}: OK`, `${lastRun.summary.sha256}  -`, '']);
    },
  },

  'file.cleanup-temp-files': {
    wave: 1,
    files: true,
    env: () => fileEnv({ BGTASK_TEMP_ROOTS: `${DATA}/tmp` }),
    summary: () => ({ files_removed: TEMP_FILES.filter((f) => f.goes).length, bytes_freed: sum(TEMP_FILES.filter((f) => f.goes)), roots: 1 }),
    async effect() {
      expect(await listed('tmp')).toEqual([...below(TEMP_FILES.filter((f) => !f.goes), 'tmp'), 'user-data-link'].sort());
      // The symlink out of the root was not followed: the old files it points at are all there.
      expect(await listed('user-data')).toEqual(below(USER_FILES, 'user-data').sort());
    },
  },

  'file.restore-user-data': {
    wave: 3,
    files: true,
    database: RESTORE_DB,
    env: () => [...databaseEnv('postgres', 5432, RESTORE_DB), ...fileEnv({ BGTASK_BACKUP_DIR: `${DATA}/backups`, BGTASK_USER_DATA_ROOT: `${DATA}/restored` })],
    summary: () => ({ archive: expect.stringMatching(new RegExp(`-${jobName('file.backup-user-data')}\\.tar\\.gz$`)), tables: USER_TABLES.length, rows: seeded.backupRows, files: USER_FILES.length }),
    async effect() {
      // Row by row, table by table, the restored database is the one backed up.
      const restored = await tableDump(RESTORE_DB);
      expect(restored).toEqual(seeded.sourceDump);
      expect(Object.values(restored).filter((rows) => rows === '[]')).toEqual([]);
      // File by file: path, size, modification time and content.
      expect(await fingerprints('restored')).toEqual(await fingerprints('user-data'));
    },
  },

  'maintenance.cleanup-old-sessions': {
    wave: 1,
    env: () => databaseEnv(),
    summary: () => ({ sessions_cleaned: 2400, batches: 3 }),
    async effect() {
      expect(await psql(ns, 'SELECT count(*) FILTER (WHERE expires_at < now()), count(*) FILTER (WHERE expires_at >= now()) FROM user_sessions')).toBe('0|300');
    },
  },

  'maintenance.optimize-database': {
    wave: 2,
    env: () => databaseEnv(),
    summary: () => ({
      tables_candidate: 1,
      tables_optimized: 1,
      dead_tuples_found: seeded.deadSessions,
      indexes_updated: 0,
      leftover_indexes: 0,
      invalid_indexes_dropped: 0,
      invalid_indexes_reported: 0,
      unused_indexes: 0,
    }),
    async effect() {
      const stats = await waitFor(
        'the vacuum of user_sessions in its statistics',
        async () => {
          const row = await psql(ns, "SELECT vacuum_count || '|' || n_dead_tup FROM pg_stat_user_tables WHERE relname = 'user_sessions'");
          return row.startsWith('1|') ? row : undefined;
        },
        15_000,
        300,
      );
      expect(stats).toBe('1|0');
    },
  },

  'sync.calendar-events': {
    wave: 1,
    env: () => databaseEnv(),
    // Both feeds' first sync: their events are imported, not announced.
    summary: () => ({ feeds: 2, feeds_synced: 2, feeds_not_modified: 0, feeds_failed: 0, events_synced: 9, events_removed: 1, notifications_queued: 0, conflicts: 1, duplicates: 0 }),
    async effect() {
      const events = (await psql(ns, `
        SELECT u.email || '|' || e.calendar_id || '|' || e.uid || '|' || e.summary || '|' || (e.recurrence_id IS NOT NULL)::text
        FROM calendar_events e JOIN users u ON u.id = e.user_id ORDER BY u.email, e.calendar_id, e.starts_at, e.uid`)).split('\n');
      expect(events).toEqual([
        // The weekly event as four occurrences, in time order with the others; the event gone from the feed removed.
        'ada@example.org|default|yoga-81d2@example.org|Yoga|true',
        'ada@example.org|default|review-5c1e@example.org|Quarterly review|false',
        'ada@example.org|default|flight-a7f0@example.org|Flight to Lisbon|false',
        'ada@example.org|default|yoga-81d2@example.org|Yoga|true',
        'ada@example.org|default|yoga-81d2@example.org|Yoga|true',
        'ada@example.org|default|yoga-81d2@example.org|Yoga|true',
        'ada@example.org|work|standup-cancelled@example.org|Standup|false',
        'ada@example.org|work|dentist-3b9e@example.org|Dentist|false',
        'bob@example.org|default|call-44aa@example.org|Client call|false',
        'bob@example.org|default|dentist-90ff@example.org|Dentist|false',
        'bob@example.org|default|gym-12cd@example.org|Gym|false',
      ]);
      // The flight is given in Berlin time (TZID): 08:30 there, whatever the offset that day.
      expect(await psql(ns, "SELECT to_char(starts_at AT TIME ZONE 'Europe/Berlin', 'HH24:MI') FROM calendar_events WHERE uid = 'flight-a7f0@example.org'")).toBe('08:30');
      const feeds = (await psql(ns, "SELECT u.email || '|' || f.last_status || '|' || f.etag FROM calendar_feeds f JOIN users u ON u.id = f.user_id ORDER BY u.email")).split('\n');
      expect(feeds).toEqual([`ada@example.org|synced|${seeded.icsEtags.ada}`, `bob@example.org|synced|${seeded.icsEtags.bob}`]);
      expect(ics.requests.map((r) => r.path).sort()).toEqual(['/feeds/ada.ics', '/feeds/bob.ics']);
    },
  },

  'sync.notion-pages': {
    wave: 1,
    env: () => [...databaseEnv(), { name: 'NOTION_BASE_URL', value: 'http://notion' }, { name: 'NOTION_TOKEN', valueFrom: { secretKeyRef: { name: 'notion', key: 'token' } } }],
    summary: () => ({
      connections: 1,
      connections_failed: 0,
      pages_synced: seeded.notionPages,
      pages_archived: seeded.notionArchived,
      requests: 2,
      // No local change recorded: nothing retrieved or sent before the pull.
      pages_pushed: 0,
      conflicts_resolved: 0,
      pushes_failed: 0,
      push_attempts_failed: 0,
    }),
    async effect() {
      expect(await psql(ns, `SELECT count(*) || '|' || count(*) FILTER (WHERE archived) || '|' || count(DISTINCT notion_page_id) FROM notion_pages WHERE user_id = ${users.ada}`)).toBe(
        `${seeded.notionPages}|${seeded.notionArchived}|${seeded.notionPages}`,
      );
      expect(await psql(ns, "SELECT title FROM notion_pages WHERE notion_page_id = '00000000-0000-4000-8000-000000000042'")).toBe('Meeting notes 42');
      const connection = await psql(ns, `SELECT to_char(high_water_mark AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '|' || coalesce(last_error, '-') FROM notion_connections WHERE user_id = ${users.ada}`);
      expect(connection).toBe(`${seeded.newestNotionEdit}|-`);
      const searches = notion.searches();
      expect(searches.map((s) => s.start_cursor === undefined)).toEqual([true, false]);
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Setting up: the namespace, services, test servers, volume, tasks and accounts; then the seeds.

/** status.lastRun is written by the runner, which needs `get` and `patch` on its task's status only. */
function taskObjects(task: string): Record<string, unknown>[] {
  const name = bgtName(task);
  const sa = `runner-${name}`;
  return [
    { apiVersion: GROUP_VERSION, kind: KIND, metadata: { name, namespace: ns }, spec: { task, schedule: registry.require(task).defaults.schedule, suspend: true } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: sa, namespace: ns },
      rules: [{ apiGroups: [API_GROUP], resources: ['backgroundtasks/status'], resourceNames: [name], verbs: ['get', 'patch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: sa, namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    },
  ];
}

async function startTestServers(gateway: string): Promise<void> {
  [smtp, ics, notion, llm] = await Promise.all([startFakeSmtp(), startFakeIcs(), startFakeNotion(NOTION_TOKEN), startFakeOpenAI()]);
  // The endpoint lists its models too (ai.test-scheduler-connection asks).
  llm.setHandler((req) => {
    if (req.method === 'GET' && req.path === '/v1/models') {
      return { status: 200, body: { object: 'list', data: ['gpt-4o-mini', 'gpt-4o'].map((id) => ({ id, object: 'model', created: 1721172741, owned_by: 'system' })) } };
    }
    if (req.method === 'POST' && req.path === '/v1/chat/completions') {
      const body = JSON.parse(req.body) as { messages: { role: string; content: string }[] };
      return completionFor(body.messages.find((m) => m.role === 'user')?.content ?? '');
    }
    return { status: 404, body: { error: { message: `Unknown request URL: ${req.method} ${req.path}`, type: 'invalid_request_error', code: 'unknown_url' } } };
  });
  const port = (url: string) => Number(new URL(url).port);
  exposed.push(
    ...(await Promise.all([
      exposeHostServer(ns, 'smtp', { gateway, port: 25, localPort: smtp.port }),
      exposeHostServer(ns, 'ics-feeds', { gateway, port: 80, localPort: port(ics.url) }),
      exposeHostServer(ns, 'notion', { gateway, port: 80, localPort: port(notion.url) }),
      exposeHostServer(ns, 'llm', { gateway, port: 80, localPort: port(llm.url) }),
    ])),
  );
}

/** `psql` in the user's own day: `days` from today at local `time`. */
const localDay = (email: string, days: number, time: string) =>
  `((date_trunc('day', now() AT TIME ZONE (SELECT timezone FROM users WHERE email = '${email}')) + interval '${days} days' + time '${time}') AT TIME ZONE (SELECT timezone FROM users WHERE email = '${email}'))`;
const user = (email: string) => `(SELECT id FROM users WHERE email = '${email}')`;

async function seedDatabase(): Promise<void> {
  await psql(ns, `
    -- Only optimize-database vacuums the sessions table.
    ALTER TABLE user_sessions SET (autovacuum_enabled = false);
    INSERT INTO users (email, display_name, timezone, daily_summary_opt_in) VALUES
      ('ada@example.org', 'Ada', 'Europe/Berlin', true),
      ('bob@example.org', 'Bob', 'America/New_York', true),
      ('cy@example.org', 'Cy', 'UTC', false);

    -- maintenance.cleanup-old-sessions: 800 expired sessions and 100 live ones per user.
    INSERT INTO user_sessions (user_id, token, expires_at)
      SELECT u.id, 'expired-' || u.id || '-' || g, now() - interval '1 hour' - g * interval '1 minute' FROM users u, generate_series(1, 800) g;
    INSERT INTO user_sessions (user_id, token, expires_at)
      SELECT u.id, 'live-' || u.id || '-' || g, now() + interval '7 days' FROM users u, generate_series(1, 100) g;

    -- email.send-notifications: two due by e-mail; one not due yet and one by SMS stay.
    INSERT INTO notifications (user_id, channel, title, body, scheduled_for) VALUES
      (${user('ada@example.org')}, 'email', 'Your report is ready', 'The quarterly report finished.', now() - interval '1 minute'),
      (${user('bob@example.org')}, 'email', 'Reminder: call Ada', 'At 3 pm.', now() - interval '1 hour'),
      (${user('ada@example.org')}, 'email', 'Tomorrow', 'Not yet.', now() + interval '1 day'),
      (${user('bob@example.org')}, 'sms', 'By text', 'No SMS gateway here.', now() - interval '1 minute');

    -- ai.cleanup-old-logs: 40 runs finished 31 to 70 days ago; 10 in the past five days stay.
    INSERT INTO task_runs (run_id, task, family, trigger, attempt, outcome, started_at, finished_at)
      SELECT 'old-' || g, 'sync.calendar-events', 'sync', 'Schedule', 1, 'Succeeded', now() - (30 + g) * interval '1 day', now() - (30 + g) * interval '1 day' + interval '3 seconds'
      FROM generate_series(1, 40) g;
    INSERT INTO task_runs (run_id, task, family, trigger, attempt, outcome, started_at, finished_at)
      SELECT 'recent-' || g, 'maintenance.cleanup-old-sessions', 'maintenance', 'Schedule', 1, CASE WHEN g = 3 THEN 'Failed' ELSE 'Succeeded' END,
             now() - g * interval '12 hours', now() - g * interval '12 hours' + interval '1 second'
      FROM generate_series(1, 10) g;

    -- ai.process-due-tasks: three due (once, daily, cron), one not yet due, one paused; one done yesterday.
    INSERT INTO ai_tasks (user_id, title, description, schedule_type, schedule_config, cron_expression, timezone, next_run_at, status, run_count, last_run_at) VALUES
      (${user('ada@example.org')}, 'News digest', 'Three headlines from my feeds', 'once', '{}', NULL, 'Europe/Berlin', NULL, 'completed', 1, now() - interval '1 day'),
      (${user('ada@example.org')}, 'Remind me to call Bob', 'About the offsite', 'once', '{}', NULL, 'Europe/Berlin', now() - interval '2 minutes', 'active', 0, NULL),
      (${user('ada@example.org')}, 'Morning briefing', 'Weather and my first meeting', 'daily', '{"time": "08:00"}', NULL, 'Europe/Berlin', now() - interval '5 minutes', 'active', 0, NULL),
      (${user('bob@example.org')}, 'Inbox triage', 'Flag anything urgent', 'cron', '{}', '5 * * * *', 'America/New_York', now() - interval '1 minute', 'active', 0, NULL),
      (${user('bob@example.org')}, 'Weekly plan', NULL, 'weekly', '{"time": "18:30", "weekday": 0}', NULL, 'America/New_York',
        (date_trunc('day', now() AT TIME ZONE 'America/New_York') + interval '2 days' + time '18:30') AT TIME ZONE 'America/New_York', 'active', 0, NULL),
      (${user('cy@example.org')}, 'Paused reminder', NULL, 'once', '{}', NULL, 'UTC', now() - interval '1 hour', 'paused', 0, NULL);
    INSERT INTO ai_task_results (ai_task_id, user_id, run_id, status, result, model, total_tokens, created_at)
      SELECT id, user_id, 'ai-yesterday', 'succeeded', 'Rates unchanged; rain in Berlin; the offsite moved to Friday.', 'gpt-4o-mini', 29, ${localDay('ada@example.org', -1, '09:00')}
      FROM ai_tasks WHERE title = 'News digest';

    -- sync.calendar-events: a feed each for ada and bob; an event since dropped from ada's feed;
    -- ada's work calendar (no feed) for email.send-daily-summary.
    INSERT INTO calendar_feeds (user_id, calendar_id, url) VALUES
      (${user('ada@example.org')}, 'default', 'http://ics-feeds/feeds/ada.ics'),
      (${user('bob@example.org')}, 'default', 'http://ics-feeds/feeds/bob.ics');
    INSERT INTO calendar_events (user_id, calendar_id, uid, summary, location, starts_at, ends_at, status, synced_at) VALUES
      (${user('ada@example.org')}, 'default', 'offsite-2f9c@example.org', 'Team offsite', NULL, now() + interval '3 days', now() + interval '3 days 8 hours', 'confirmed', now() - interval '1 day'),
      (${user('ada@example.org')}, 'work', 'dentist-3b9e@example.org', 'Dentist', 'Friedrichstr. 5', ${localDay('ada@example.org', 0, '15:00')}, ${localDay('ada@example.org', 0, '16:00')}, 'confirmed', now()),
      (${user('ada@example.org')}, 'work', 'standup-cancelled@example.org', 'Standup', NULL, ${localDay('ada@example.org', 0, '09:30')}, ${localDay('ada@example.org', 0, '09:45')}, 'cancelled', now());

    -- sync.notion-pages: ada's workspace, token in the variable NOTION_TOKEN (from a Secret).
    INSERT INTO notion_connections (user_id) VALUES (${user('ada@example.org')});`);
  for (const row of (await psql(ns, "SELECT split_part(email, '@', 1) || '|' || id FROM users")).split('\n')) {
    const [name, id] = row.split('|');
    users[name!] = id!;
  }
}

function seedTestServers(): void {
  // Feeds of events from the day after tomorrow on (so none is "today" for the daily summary).
  const day = (days: number, hour: number, minute = 0) => new Date(Math.floor(Date.now() / DAY) * DAY + days * DAY + (hour * 60 + minute) * 60_000);
  const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const local = (d: Date) => stamp(d).replace('Z', '');
  const yoga = ['BEGIN:VEVENT', 'UID:yoga-81d2@example.org', 'DTSTAMP:20260101T000000Z', `DTSTART:${stamp(day(2, 18))}`, `DTEND:${stamp(day(2, 19))}`, 'RRULE:FREQ=WEEKLY;COUNT=4', 'SUMMARY:Yoga', 'END:VEVENT'].join('\r\n');
  // 08:30 Berlin time that day: the date part from UTC, the wall-clock time as given.
  const flightDay = local(day(5, 0)).slice(0, 8);
  const flight = ['BEGIN:VEVENT', 'UID:flight-a7f0@example.org', 'DTSTAMP:20260101T000000Z', `DTSTART;TZID=Europe/Berlin:${flightDay}T083000`, `DTEND;TZID=Europe/Berlin:${flightDay}T113000`, 'SUMMARY:Flight to Lisbon', 'LOCATION:BER', 'END:VEVENT'].join('\r\n');
  seeded.icsEtags.ada = ics.publish('ada', calendar(yoga, vevent('review-5c1e@example.org', day(3, 9), day(3, 10), 'Quarterly review'), flight));
  // Two of bob's overlap: one conflict.
  seeded.icsEtags.bob = ics.publish(
    'bob',
    calendar(
      vevent('call-44aa@example.org', day(2, 14), day(2, 15), 'Client call'),
      vevent('dentist-90ff@example.org', day(2, 14, 30), day(2, 15, 30), 'Dentist'),
      vevent('gym-12cd@example.org', day(4, 7), day(4, 8), 'Gym'),
    ),
  );

  for (let i = 1; i <= seeded.notionPages; i++) {
    const lastEdited = new Date(Date.UTC(2026, 10, 1) + i * 60_000).toISOString();
    notion.pages.push({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, title: `Meeting notes ${i}`, lastEdited, archived: i % 40 === 0 });
  }
  seeded.newestNotionEdit = notion.pages.at(-1)!.lastEdited;
}

async function seedRedis(): Promise<void> {
  seeded.mailIds = Array.from({ length: 24 }, (_, i) => `reminder-2026-${String(i + 1).padStart(4, '0')}`);
  const items = seeded.mailIds.map((id, i) => JSON.stringify({ id, to: `user${i + 1}@example.org`, subject: `Your reminder #${i + 1}`, text: `Reminder ${i + 1} is due.` }));
  // One already sent by a run that died before acknowledging it: acknowledged, not sent again.
  const duplicate = JSON.stringify({ id: seeded.duplicateId, to: 'ada@example.org', subject: 'Your receipt', text: 'Thank you.' });
  const replies = await redisCli(ns, [['SET', `${Q}:sent:${seeded.duplicateId}`, Date.now(), 'EX', 86_400], ...[...items, duplicate].map((item) => ['LPUSH', `${Q}:queue`, item])]);
  expect(replies.at(-1)).toBe(String(items.length + 1));
}

async function seedFiles(): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const lines = [`cd '${volume!.dir}'`, 'mkdir -p tmp logs user-data backups'];
  for (const f of [...TEMP_FILES, ...LOG_FILES, ...USER_FILES]) {
    lines.push(`mkdir -p "$(dirname '${f.path}')"`, `head -c ${f.bytes} /dev/urandom > '${f.path}'`, `touch -d @${now - Math.round(f.ageDays * 86_400)} '${f.path}'`);
  }
  // A symlink out of the temp root, to a tree of old files.
  lines.push(`ln -s ${DATA}/user-data tmp/user-data-link`);
  for (const name of OLD_BACKUPS) lines.push(`head -c 2048 /dev/urandom > backups/${name}`, `(cd backups && sha256sum ${name} > ${name}.sha256)`);
  lines.push(`chown -hR ${RUNNER_UID}:${RUNNER_UID} .`);
  await nodeShell(node, lines.join('\n'));
}

function withVolume(job: Record<string, any>): Record<string, any> {
  const pod = job.spec.template.spec;
  pod.volumes.push({ name: 'data', persistentVolumeClaim: { claimName: volume!.claim } });
  pod.containers[0].volumeMounts.push({ name: 'data', mountPath: DATA });
  return job;
}

const outcomes = new Map<string, Outcome>();

async function runWave(wave: number): Promise<void> {
  const tasks = TASKS.filter((t) => SCENARIOS[t]?.wave === wave);
  await Promise.all(
    tasks.map(async (task) => {
      const s = SCENARIOS[task]!;
      const args = ['run', task, ...(s.params ? ['--params', JSON.stringify(s.params)] : [])];
      const job = runnerJob(ns, { name: jobName(task), args, serviceAccount: `runner-${bgtName(task)}`, task: bgtName(task), env: s.env() });
      try {
        outcomes.set(task, { end: await runJob(ns, s.files ? withVolume(job) : job, 240_000) });
      } catch (error) {
        outcomes.set(task, { error });
      }
    }),
  );
}

beforeAll(async () => {
  // The seed and the checks name Ada's "yesterday" and "today": the file runs within one day of hers.
  await clearOfLocalMidnight(['Europe/Berlin', 'America/New_York'], 5 * 60_000);
  const started = Date.now();
  const mark = (what: string) => console.log(`tasks-in-cluster: ${what} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await installCrd();
  ns = await createNamespace('tasks-in-cluster');
  await kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
  node = await kindNode();
  const gateway = await kindGateway(node);
  const version = await kubectlJson<{ serverVersion: { gitVersion: string } }>(['version']);
  seeded.kubernetesVersion = version.serverVersion.gitVersion;
  const setup = [
    deployServices(ns, ['postgres', 'redis']),
    startTestServers(gateway),
    nodeVolume(ns, 'data', { node, dir: `/var/local/bgtask-tests/${ns}`, uid: RUNNER_UID }).then((v) => (volume = v)),
    kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          ...TASKS.filter((t) => SCENARIOS[t]).flatMap(taskObjects),
          { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'notion', namespace: ns }, stringData: { token: NOTION_TOKEN } },
        ],
      }),
    }),
  ];
  setupSettled = Promise.allSettled(setup);
  await Promise.all(setup);
  mark('services, test servers, volume and tasks ready');
  await psql(ns, `CREATE DATABASE ${RESTORE_DB}`);
  const migrations = await Promise.all(
    [databaseEnv(), databaseEnv('postgres', 5432, RESTORE_DB)].map((env, i) => runJob(ns, runnerJob(ns, { name: `migrate-${i}`, args: ['migrate'], env }))),
  );
  for (const m of migrations) expect(m.exitCode, await kubectl(['-n', ns, 'logs', m.podName])).toBe(0);
  await Promise.all([seedDatabase(), seedRedis(), seedFiles()]);
  seedTestServers();
  mark('migrated and seeded');

  await runWave(1);
  mark('wave 1 done');
  // What the backup must hold, and what optimize-database must find: read once nothing writes.
  // The statistics arrive asynchronously: taken once two reads a second apart agree.
  let lastRead = '';
  seeded.deadSessions = Number(
    await waitFor(
      'the deleted sessions in the statistics',
      async () => {
        const dead = await psql(ns, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'user_sessions'");
        const settled = dead === lastRead && Number(dead) >= 1000;
        lastRead = dead;
        return settled ? dead : undefined;
      },
      20_000,
      1000,
    ),
  );
  seeded.sourceDump = await tableDump('bgtask');
  seeded.backupRows = Object.values(seeded.sourceDump).reduce((n, rows) => n + (JSON.parse(rows) as unknown[]).length, 0);
  await runWave(2);
  mark('wave 2 done');
  await runWave(3);
  mark('wave 3 done');
}, 600_000);

afterAll(async () => {
  await setupSettled;
  await Promise.all(exposed.map((e) => e.close()));
  await Promise.all([smtp, ics, notion, llm].filter(Boolean).map((s) => s.close()));
  if (ns) await deleteNamespace(ns);
  await volume?.remove();
});

describe('every task of the registry as a Job of the runner image in the cluster', () => {
  it('has a scenario here for every registered task, and none for a task the registry lacks', () => {
    expect(Object.keys(SCENARIOS).sort()).toEqual([...TASKS].sort());
  });

  for (const task of TASKS) {
    it(`${task}: exits 0, its counters in its BackgroundTask's status, its effect in the service`, async () => {
      const scenario = SCENARIOS[task];
      if (!scenario) throw new Error(`${task} is registered but has no in-cluster scenario in this file: add one`);
      const outcome = outcomes.get(task);
      if (!outcome?.end) throw outcome?.error ?? new Error(`${task} did not run`);
      const logs = await kubectl(['-n', ns, 'logs', outcome.end.podName]);
      expect(outcome.end.exitCode, logs).toBe(0);
      expect(outcome.end.reason).toBe('Completed');

      const lastRun = (await getBackgroundTask(ns, bgtName(task))).status?.lastRun;
      expect(lastRun, logs).toMatchObject({ runId: jobName(task), trigger: 'Manual', attempt: 1, outcome: 'Succeeded' });
      expect(lastRun.summary).toMatchObject(scenario.summary());
      // The kubelet's copy of the result is the same.
      expect(JSON.parse(outcome.end.message ?? 'null')).toEqual(lastRun);
      if (registry.require(task).needs.postgres) {
        const row = await psql(ns, `SELECT outcome || '|' || summary::text FROM task_runs WHERE run_id = '${jobName(task)}'`, scenario.database ?? 'bgtask');
        const [recorded, summary] = [row.slice(0, row.indexOf('|')), row.slice(row.indexOf('|') + 1)];
        expect(recorded).toBe('Succeeded');
        expect(JSON.parse(summary)).toEqual(lastRun.summary);
      }
      await scenario.effect(lastRun);
    });
  }
});
