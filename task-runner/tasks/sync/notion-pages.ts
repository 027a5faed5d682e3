import * as z from 'zod';
import { describeError } from '../../errors.ts';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';

interface Connection {
  user_id: string;
  token_variable: string;
  high_water_mark: Date | null;
}

const UPSERT = `
  INSERT INTO notion_pages (user_id, notion_page_id, parent_id, title, url, properties, archived, last_edited_time, synced_at)
  SELECT $1, r.id, r.parent, r.title, r.url, r.props, r.archived, r.edited, $9
  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::boolean[], $8::timestamptz[])
       AS r(id, parent, title, url, props, archived, edited)
  ON CONFLICT (user_id, notion_page_id) DO UPDATE SET
    parent_id = EXCLUDED.parent_id, title = EXCLUDED.title, url = EXCLUDED.url, properties = EXCLUDED.properties,
    archived = EXCLUDED.archived, last_edited_time = EXCLUDED.last_edited_time, synced_at = EXCLUDED.synced_at`;

export default defineTask({
  name: 'sync.notion-pages',
  family: 'sync',
  description: 'Mirrors the Notion pages edited since the last sync into notion_pages (search by last_edited_time, paginated, Retry-After honoured)',
  params: z.strictObject({
    pageSize: z.int().min(1).max(100).default(100).describe('results per search request (Notion allows 100)'),
    maxRetries: z.int().min(0).max(10).default(5).describe("retries of a request on 429/5xx; the client waits the server's Retry-After"),
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
    const [{ default: notionSdk }, { pageRow }] = await Promise.all([import('@notionhq/client'), import('./notion-page-row.ts')]);
    const baseUrl = ctx.env.NOTION_BASE_URL;
    const { rows: connections } = await ctx.db.query<Connection>(
      'SELECT user_id, token_variable, high_water_mark FROM notion_connections WHERE enabled ORDER BY user_id',
    );
    for (const key of ['pages_synced', 'pages_archived', 'requests', 'connections_failed']) ctx.count(key, 0);
    ctx.set('connections', connections.length);
    const failures: string[] = [];

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
          if (rows.length > 0 && !ctx.dryRun) {
            await ctx.db.query(UPSERT, [
              user,
              rows.map((r) => r.notionPageId),
              rows.map((r) => r.parentId),
              rows.map((r) => r.title),
              rows.map((r) => r.url),
              rows.map((r) => JSON.stringify(r.properties)),
              rows.map((r) => r.archived),
              rows.map((r) => r.lastEditedTime),
              ctx.clock.now(),
            ]);
          }
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
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        const message = describeError(err);
        failures.push(`user ${user}: ${message}`);
        ctx.count('connections_failed');
        ctx.log.warn({ user, err }, 'notion sync failed');
        if (!ctx.dryRun) await ctx.db.query('UPDATE notion_connections SET last_error = $2 WHERE user_id = $1', [user, message]);
      }
    }
    if (failures.length > 0) throw new Error(`${failures.length} of ${connections.length} Notion connections failed to sync: ${failures.join('; ')}`);
    return `synced the Notion pages of ${countNoun(connections.length, 'user')}`;
  },
});
