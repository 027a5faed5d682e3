/**
 * The push half of sync.notion-pages: a user's local changes (the pending_* columns of their
 * notion_pages rows, migration 0016), oldest first, each checked against Notion's page and sent
 * with pages.update, settled as a conflict, or marked refused (notion-change.ts decides).
 */
import type { APIErrorCode, Client } from '@notionhq/client';
import { countNoun } from '../../count-noun.ts';
import { describeError } from '../../errors.ts';
import { withTransaction } from '../../services/postgres.ts';
import type { TaskContext } from '../../task.ts';
import { decidePush, pushRecord, sameChange, sentChange, settledColumns, updateRequest, type ConflictPolicy, type LocalChange, type PendingColumns, type PushOutcome, type StoredPage } from './notion-change.ts';
import { pageRow, storePages, type NotionPage } from './notion-page-row.ts';

export type PushContext = Pick<TaskContext<unknown>, 'db' | 'log' | 'clock' | 'signal' | 'dryRun' | 'count'>;

/** A row's pending_* columns. */
interface PendingChangeColumns {
  pending_properties: Record<string, unknown> | null;
  pending_archived: boolean | null;
  pending_base: Date | null;
  pending_since: Date | null;
}

interface PendingRow extends PendingChangeColumns {
  notion_page_id: string;
  properties: Record<string, unknown>;
  archived: boolean;
  last_edited_time: Date;
  pushed_from: Date | null;
  pushed_as: Date | null;
  pushed_notion_changed: string[] | null;
}

interface PendingState extends PendingChangeColumns {
  push_error: string | null;
  conflict: unknown;
}

// A user's oldest changes to push ($1 user, $2 how many); a refused one waits for the application.
const PENDING = `
  SELECT notion_page_id, properties, archived, last_edited_time, pending_properties, pending_archived, pending_base, pending_since,
    pushed_from, pushed_as, pushed_notion_changed
  FROM notion_pages WHERE user_id = $1 AND pending_since IS NOT NULL AND push_error IS NULL
  ORDER BY pending_since, notion_page_id LIMIT $2`;

// The row's pending columns as they are now, locked until its outcome is stored: an application
// writing the change again waits, then finds what the push left.
const LOCK_PENDING = `
  SELECT pending_properties, pending_archived, pending_base, pending_since, push_error, conflict
  FROM notion_pages WHERE user_id = $1 AND notion_page_id = $2 FOR UPDATE`;

// The row's pending columns once settled ($3: its change is still pending, then its base; the
// application's values of the change itself are kept or cleared, never rewritten).
// A change settled (not pending any more) takes its failed attempts with it.
const STORE_PENDING = `
  UPDATE notion_pages SET
    pending_properties = CASE WHEN $3 THEN pending_properties END, pending_archived = CASE WHEN $3 THEN pending_archived END,
    pending_since = CASE WHEN $3 THEN pending_since END, pending_base = $4, push_error = $5, conflict = $6,
    push_attempts = CASE WHEN $3 THEN push_attempts ELSE 0 END, push_last_failure = CASE WHEN $3 THEN push_last_failure END
  WHERE user_id = $1 AND notion_page_id = $2`;

// A failed attempt at the row's change ($3 why); at the $4th, push_error $5 stops its pushes.
const RECORD_FAILED_ATTEMPT = `
  UPDATE notion_pages SET push_attempts = push_attempts + 1, push_last_failure = $3,
    push_error = CASE WHEN push_attempts + 1 >= $4 THEN $5 END
  WHERE user_id = $1 AND notion_page_id = $2
  RETURNING push_attempts`;

// The row's last push (migration 0016): the version it was sent from, Notion's answer, what Notion changed between.
const STORE_PUSH_RECORD = `
  UPDATE notion_pages SET pushed_from = $3, pushed_as = $4, pushed_notion_changed = $5 WHERE user_id = $1 AND notion_page_id = $2`;

// Notion's answers to a change that no retry alters: properties it rejects, a page gone or out of
// the integration's reach (restricted_resource to pages.retrieve; to pages.update it means the
// token lacks the capability: missingCapability). Failures a retry may cure (TRANSIENT, a 5xx, a
// timeout) are counted on the change. Other errors concern the connection, and end its pushes:
// unauthorized (the token), rate_limited (the client retried already), invalid_request/invalid_json
// (a request this task built wrongly), a network failure.
const REFUSALS: ReadonlySet<string> = new Set<`${APIErrorCode}`>(['validation_error', 'object_not_found', 'restricted_resource']);
const TRANSIENT: ReadonlySet<string> = new Set<string>(['conflict_error', 'notionhq_client_request_timeout']);

/** Notion answering with a partial page (its id only): the integration may not read the page's properties. */
class PartialPageError extends Error {
  override name = 'PartialPageError';
}

/** Notion refusing to update a page it let the task read: `page` as read. */
class UpdateRefused extends Error {
  override name = 'UpdateRefused';
  constructor(
    readonly page: NotionPage,
    cause: unknown,
  ) {
    super('Notion refused the update', { cause });
  }
}

/** What the pushes came to, for the run's message (the summary counts them too). */
export interface PushTally {
  /** Changes sent (in a dry run: that would be). */
  pushed: number;
  conflicts: number;
  /** Changes Notion refused, as `user <id> page <id>: <why>`. */
  refused: string[];
}

export interface PushOptions {
  /** Changes pushed at most. */
  limit: number;
  policy: ConflictPolicy;
  /** Failed attempts (TRANSIENT) after which a change gets a push_error. */
  maxAttempts: number;
}

/**
 * Pushes the user's oldest pending changes, adding to `tally` as it goes, and returns the changes
 * whose push failed in a way a retry may cure, as `page <id>: <why>`: each is counted on its row,
 * and the others are pushed still. A failure that concerns the connection is thrown, naming the
 * page; the changes not reached stay pending.
 */
export async function pushLocalChanges(ctx: PushContext, notion: Client, user: string, options: PushOptions, tally: PushTally): Promise<string[]> {
  const { rows } = await ctx.db.query<PendingRow>(PENDING, [user, options.limit]);
  const failed: string[] = [];
  for (const row of rows) {
    ctx.signal.throwIfAborted();
    const page = row.notion_page_id;
    const change = localChange(row)!; // PENDING reads rows with a change only (a CHECK keeps it whole)
    const stored = storedPage(row);
    try {
      const result = await pushChange(ctx, notion, user, page, change, stored, options.policy);
      if (result.pushed) tally.pushed++;
      if (result.conflict) tally.conflicts++;
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      if (isTransient(err)) {
        failed.push(`page ${page}: ${await recordFailedAttempt(ctx, user, page, change, err, options.maxAttempts)}`);
        continue;
      }
      if (!isRefusal(err)) throw new Error(`pushing the local change to Notion page ${page} failed`, { cause: err });
      // A refused update: the page as read is stored all the same, for the application to show.
      const error = describeError(err instanceof UpdateRefused ? err.cause : err);
      tally.refused.push(`user ${user} page ${page}: ${error}`);
      ctx.count('pushes_failed');
      ctx.log.warn({ user, page, err }, 'Notion refused a local change; kept with its push_error');
      if (!ctx.dryRun) await settle(ctx, user, page, change, { kind: 'refused', error }, err instanceof UpdateRefused ? err.page : null);
    }
  }
  return failed;
}

/** Counts a failed attempt on the change's row, setting its push_error at the last; says what became of it. */
async function recordFailedAttempt(ctx: PushContext, user: string, page: string, change: LocalChange, err: unknown, maxAttempts: number): Promise<string> {
  const error = describeError(err);
  ctx.count('push_attempts_failed');
  ctx.log.warn({ user, page, err }, 'pushing a local change failed; kept for the next run');
  if (ctx.dryRun) return error;
  const giveUp = `gave up after ${countNoun(maxAttempts, 'failed attempt')}, the last: ${error}`;
  const attempts = await withTransaction(
    ctx.db,
    async (client) => {
      const { rows } = await client.query<PendingState>(LOCK_PENDING, [user, page]);
      const current = rows[0] && localChange(rows[0]);
      // A change written again meanwhile is a new one: the attempt was not at it.
      if (!current || !sameChange(current, change)) return undefined;
      const updated = await client.query<{ push_attempts: number }>(RECORD_FAILED_ATTEMPT, [user, page, error, maxAttempts, giveUp]);
      return updated.rows[0]!.push_attempts;
    },
    { log: ctx.log },
  );
  if (attempts === undefined || attempts < maxAttempts) return error;
  ctx.count('pushes_failed');
  return `${giveUp} (see notion_pages.push_error)`;
}

async function pushChange(
  ctx: PushContext,
  notion: Client,
  user: string,
  page: string,
  change: LocalChange,
  stored: StoredPage,
  policy: ConflictPolicy,
): Promise<{ pushed: boolean; conflict: boolean }> {
  const current = fullPage(await notion.pages.retrieve({ page_id: page }));
  ctx.count('requests');
  const decision = decidePush(change, current, stored, policy, ctx.clock.now());
  if (decision.action === 'nothing-to-send') {
    if (!ctx.dryRun) await settle(ctx, user, page, change, { kind: 'nothing-to-send' }, current);
    ctx.log.info({ user, page }, 'local change sets nothing; cleared without a request');
    return { pushed: false, conflict: false };
  }
  if (decision.action === 'send' && !ctx.dryRun) {
    const sent = sentChange(change, decision);
    const answer = await notion.pages.update(updateRequest(page, sent)).catch((err: unknown) => updateFailed(err, current));
    ctx.count('requests');
    // Notion's answer is stored as the row's copy: the next pull reads the same version and
    // changes nothing, and the next change is based on it, not on the version before this write.
    // A partial answer is no refusal (the update was applied): the next pull brings the page.
    const updated = 'last_edited_time' in answer ? (answer as NotionPage) : null;
    const record = updated && pushRecord(sent, stored, updated);
    await settle(ctx, user, page, change, { kind: 'pushed', record, conflict: decision.conflict }, updated);
  } else if (decision.action === 'keep-notion' && !ctx.dryRun) {
    await settle(ctx, user, page, change, { kind: 'kept-notion', conflict: decision.conflict }, current);
  }
  const { conflict } = decision;
  if (conflict) {
    ctx.count('conflicts_resolved');
    ctx.log.info(
      { user, page, policy, notionChanged: conflict.notion_changed, base: conflict.base, notionEdited: conflict.notion_last_edited_time, dryRun: ctx.dryRun },
      `conflict with an edit in Notion settled: ${policy}`,
    );
  }
  if (decision.action === 'send') {
    ctx.count('pages_pushed');
    ctx.log.info({ user, page, dryRun: ctx.dryRun }, 'local change pushed to Notion');
  }
  return { pushed: decision.action === 'send', conflict: conflict !== null };
}

/** Stores the outcome (and Notion's version of the page, when there is one) in one transaction. */
async function settle(ctx: PushContext, user: string, page: string, handled: LocalChange, outcome: PushOutcome, copy: NotionPage | null): Promise<void> {
  await withTransaction(
    ctx.db,
    async (client) => {
      const { rows } = await client.query<PendingState>(LOCK_PENDING, [user, page]);
      const row = rows[0];
      if (!row) return; // the row went meanwhile (its user deleted): nothing to settle
      if (copy) await storePages(client, user, [pageRow(copy)], ctx.clock.now());
      const push = outcome.kind === 'pushed' ? outcome.record : null;
      if (push) await client.query(STORE_PUSH_RECORD, [user, page, push.from, push.as, push.notionChanged]);
      const next = settledColumns(pendingColumns(row), handled, outcome);
      await client.query(STORE_PENDING, [
        user,
        page,
        next.change !== null,
        next.change?.base ?? null,
        next.pushError,
        next.conflict === null || next.conflict === undefined ? null : JSON.stringify(next.conflict),
      ]);
    },
    { log: ctx.log },
  );
}

function storedPage(row: PendingRow): StoredPage {
  const lastPush = row.pushed_from && row.pushed_as ? { from: row.pushed_from, as: row.pushed_as, notionChanged: row.pushed_notion_changed ?? [] } : null;
  return { properties: row.properties, archived: row.archived, lastEditedTime: row.last_edited_time, lastPush };
}

function pendingColumns(row: PendingState): PendingColumns {
  return { change: localChange(row), pushError: row.push_error, conflict: row.conflict };
}

function localChange(row: PendingChangeColumns): LocalChange | null {
  if (!row.pending_base || !row.pending_since) return null;
  return { properties: row.pending_properties ?? {}, archived: row.pending_archived, base: row.pending_base, since: row.pending_since };
}

function fullPage(response: Awaited<ReturnType<Client['pages']['retrieve']>>): NotionPage {
  if (!('last_edited_time' in response)) throw new PartialPageError(`Notion answered with page ${response.id} without its properties (the integration may not read its content)`);
  return response as NotionPage;
}

/**
 * Rethrows a pages.update failure as what it means here. restricted_resource: the integration may
 * read the page but not update content, which concerns the token, not the page. A refusal carries
 * the page as read before it.
 */
function updateFailed(err: unknown, page: NotionPage): never {
  const { code } = (err ?? {}) as { code?: unknown };
  if (code === 'restricted_resource') throw new Error("Notion refused to update the page (restricted_resource): the integration lacks the 'Update content' capability", { cause: err });
  if (isRefusal(err)) throw new UpdateRefused(page, err);
  throw err;
}

function isTransient(err: unknown): boolean {
  const { code, status } = (err ?? {}) as { code?: unknown; status?: unknown };
  return (typeof code === 'string' && TRANSIENT.has(code)) || (typeof status === 'number' && status >= 500);
}

function isRefusal(err: unknown): boolean {
  if (err instanceof PartialPageError || err instanceof UpdateRefused) return true;
  const { code, status } = (err ?? {}) as { code?: unknown; status?: unknown };
  return typeof code === 'string' && REFUSALS.has(code) && typeof status === 'number' && status >= 400 && status < 500;
}
