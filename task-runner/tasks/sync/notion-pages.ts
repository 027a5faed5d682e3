import * as z from 'zod';
import { describeError } from '../../errors.ts';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';
import type { PushTally } from './notion-push.ts';

interface Connection {
  user_id: string;
  token_variable: string;
  high_water_mark: Date | null;
}

export default defineTask({
  name: 'sync.notion-pages',
  family: 'sync',
  description:
    "Two-way sync of each user's Notion pages: first pushes the local changes recorded on notion_pages rows (pages.update; a conflict with an edit in Notion settled by conflictPolicy and kept in notion_pages.conflict; a push failing past the retries is counted on its row, given up after maxPushAttempts, and fails the run once the rest is done), then mirrors the pages edited since the last sync into notion_pages (search by last_edited_time, paginated, Retry-After honoured)",
  params: z.strictObject({
    pageSize: z.int().min(1).max(100).default(100).describe('results per search request (Notion allows 100)'),
    maxPushAttempts: z
      .int()
      .min(1)
      .max(100)
      .default(10)
      .describe(
        "failed pushes of a local change (a 5xx, a timeout; each fails the connection's run, after its other pushes and the pull) after which it is given up: notion_pages.push_error set, not sent again until the application writes it anew",
      ),
    maxPushes: z
      .int()
      .min(0)
      .max(1000)
      .default(100)
      .describe('local changes (notion_pages.pending_*) pushed per user and run, oldest first; the rest wait for the next run; 0 pushes none'),
    conflictPolicy: z
      .enum(['notion-wins', 'local-wins'])
      .default('notion-wins')
      .describe(
        "a local change to properties Notion changed since the version it was made on: notion-wins keeps Notion's version and records the discarded change in notion_pages.conflict; local-wins sends it anyway, recording the values it replaced",
      ),
    maxRetries: z
      .int()
      .min(0)
      .max(10)
      .default(5)
      .describe("retries of a request answered 429 (or 500/503 to a page read: the client repeats no search or update after a 5xx); it waits the server's Retry-After"),
    maxRetryDelaySeconds: z.int().min(1).max(600).default(60).describe('longest wait before a retry'),
    timeoutSeconds: z.int().min(1).max(600).default(60).describe('time one request may take'),
  }),
  defaults: {
    schedule: '0 */2 * * *',
    retry: { maxRetries: 3, delaySeconds: 600, backoff: 'Fixed' },
    timeoutSeconds: 3600,
    softTimeoutSeconds: 3300,
  },
  needs: { postgres: true },
  async run(ctx) {
    const p = ctx.params;
    const [{ default: notionSdk }, { pageRow, storePages }, { pushLocalChanges }] = await Promise.all([
      import('@notionhq/client'),
      import('./notion-page-row.ts'),
      import('./notion-push.ts'),
    ]);
    const baseUrl = ctx.env.NOTION_BASE_URL;
    const { rows: connections } = await ctx.db.query<Connection>(
      'SELECT user_id, token_variable, high_water_mark FROM notion_connections WHERE enabled ORDER BY user_id',
    );
    for (const key of ['pages_synced', 'pages_archived', 'requests', 'connections_failed', 'pages_pushed', 'conflicts_resolved', 'pushes_failed', 'push_attempts_failed']) {
      ctx.count(key, 0);
    }
    ctx.set('connections', connections.length);
    const failures: string[] = [];
    // The local changes Notion refused are told in the run's message, but the run succeeds: a
    // retry would be refused the same, and each row keeps its push_error for the application.
    const pushes: PushTally = { pushed: 0, conflicts: 0, refused: [] };

    for (const connection of connections) {
      ctx.signal.throwIfAborted();
      const user = connection.user_id;
      try {
        const token = ctx.variable(connection.token_variable);
        if (!token) throw new Error(`${connection.token_variable} (the Notion token of user ${user}) is not set`);
        // CommonJS: `default` is its module.exports (the only export a bundled dynamic import has).
        const notion = new notionSdk.Client({
          auth: token,
          ...(baseUrl ? { baseUrl: baseUrl.replace(/\/$/, '') } : {}),
          timeoutMs: p.timeoutSeconds * 1000,
          retry: { maxRetries: p.maxRetries, maxRetryDelayMs: p.maxRetryDelaySeconds * 1000 },
          // The LogLevel enum's values ('warn', 'error' …): its object is not exported once bundled.
          logLevel: 'warn' as import('@notionhq/client').LogLevel,
          logger: (level, message, extra) => ctx.log[level === 'error' ? 'error' : level === 'warn' ? 'warn' : 'debug']({ user, ...extra }, `notion: ${message}`),
        });
        // Pushes first: each change is checked against the row's copy of the version it was made
        // on, which a pull would replace with Notion's newer one (conflicts then told by times only).
        const failedPushes = p.maxPushes > 0 ? await pushLocalChanges(ctx, notion, user, { limit: p.maxPushes, policy: p.conflictPolicy, maxAttempts: p.maxPushAttempts }, pushes) : [];
        // Newest edits first: the walk stops at the first page older than the last sync's mark.
        // Notion rounds last_edited_time to the minute, so pages at the mark itself are read again.
        const mark = connection.high_water_mark;
        let newest = mark;
        let cursor: string | undefined;
        let synced = 0;
        for (let done = false; !done; ) {
          ctx.signal.throwIfAborted();
          const response = await notion.search({
            filter: { property: 'object', value: 'page' },
            sort: { timestamp: 'last_edited_time', direction: 'descending' },
            page_size: p.pageSize,
            ...(cursor ? { start_cursor: cursor } : {}),
          });
          ctx.count('requests');
          const rows = [];
          for (const result of response.results) {
            if (result.object !== 'page' || !('last_edited_time' in result)) continue;
            const row = pageRow(result as Parameters<typeof pageRow>[0]);
            if (mark && row.lastEditedTime < mark) {
              done = true;
              break;
            }
            rows.push(row);
            if (!newest || row.lastEditedTime > newest) newest = row.lastEditedTime;
          }
          if (rows.length > 0 && !ctx.dryRun) await storePages(ctx.db, user, rows, ctx.clock.now());
          synced += rows.length;
          ctx.count('pages_synced', rows.length);
          ctx.count('pages_archived', rows.filter((r) => r.archived).length);
          if (!response.has_more || !response.next_cursor) done = true;
          cursor = response.next_cursor ?? undefined;
        }
        // The mark moves only after a complete walk: a run that dies midway is repeated whole.
        if (!ctx.dryRun) {
          await ctx.db.query('UPDATE notion_connections SET high_water_mark = $2, last_synced_at = $3, last_error = NULL WHERE user_id = $1', [
            user,
            newest,
            ctx.clock.now(),
          ]);
        }
        ctx.log.info({ user, pages: synced, mark: newest?.toISOString() ?? null }, 'notion pages synced');
        // Pulled all the same: one change that keeps failing must not hold up the others or the pull.
        if (failedPushes.length > 0) throw new Error(`${countNoun(failedPushes.length, 'local change')} failed to push, kept for the next run: ${failedPushes.join('; ')}`);
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        const message = describeError(err);
        failures.push(`user ${user}: ${message}`);
        ctx.count('connections_failed');
        ctx.log.warn({ user, err }, 'notion sync failed');
        if (!ctx.dryRun) await ctx.db.query('UPDATE notion_connections SET last_error = $2 WHERE user_id = $1', [user, message]);
      }
    }
    const { pushed, conflicts, refused } = pushes;
    const conflictsPart =
      conflicts > 0 ? `; ${countNoun(conflicts, 'conflict')} with edits in Notion ${ctx.dryRun ? 'would be settled' : 'settled'} by ${p.conflictPolicy}${ctx.dryRun ? '' : ' (see notion_pages.conflict)'}` : '';
    const refusedPart =
      refused.length > 0 ? `; ${countNoun(refused.length, 'local change')} ${ctx.dryRun ? 'would be refused by Notion' : 'refused by Notion, kept pending (see notion_pages.push_error)'}: ${refused.join('; ')}` : '';
    const pushesPart = `${conflictsPart}${refusedPart}`;
    if (failures.length > 0) throw new Error(`${failures.length} of ${connections.length} Notion connections failed to sync: ${failures.join('; ')}${pushesPart}`);
    if (ctx.dryRun) return `dry run: read the Notion pages of ${countNoun(connections.length, 'user')}, nothing sent or stored; ${countNoun(pushed, 'local change')} would be pushed${pushesPart}`;
    return `synced the Notion pages of ${countNoun(connections.length, 'user')}${pushed > 0 ? `, pushed ${countNoun(pushed, 'local change')}` : ''}${pushesPart}`;
  },
});
