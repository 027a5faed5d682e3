import type { Pool, PoolClient } from 'pg';

/** A Notion page object (API 2025-09-03) as a notion_pages row. */
export interface NotionPage {
  object: 'page';
  id: string;
  url?: string;
  last_edited_time: string;
  archived?: boolean;
  in_trash?: boolean;
  parent?: Record<string, unknown> & { type?: string };
  properties?: Record<string, { type?: string; title?: { plain_text?: string }[] }>;
}

export interface PageRow {
  notionPageId: string;
  parentId: string | null;
  title: string;
  url: string | null;
  properties: Record<string, unknown>;
  archived: boolean;
  lastEditedTime: Date;
}

export function pageRow(page: NotionPage): PageRow {
  const titleProperty = Object.values(page.properties ?? {}).find((p) => p.type === 'title');
  const parent = page.parent;
  // The parent's id sits under a key named by its type: page_id, database_id, data_source_id, block_id.
  const parentId = parent?.type && typeof parent[parent.type] === 'string' ? (parent[parent.type] as string) : null;
  const edited = new Date(page.last_edited_time);
  if (Number.isNaN(edited.getTime())) throw new Error(`page ${page.id} has an invalid last_edited_time ${JSON.stringify(page.last_edited_time)}`);
  return {
    notionPageId: page.id,
    parentId,
    title: (titleProperty?.title ?? []).map((t) => t.plain_text ?? '').join(''),
    url: page.url ?? null,
    properties: page.properties ?? {},
    archived: page.archived === true || page.in_trash === true,
    lastEditedTime: edited,
  };
}

// Notion's copy of each page; the pending_* columns (migration 0016) are the application's, and a
// store leaves them: a local change still waiting to be pushed survives a pull, and its push
// checks it against the newer version then. A copy never goes back to an older version: Notion's
// search index lags behind its pages, so a pull may read a version older than a push's answer.
const UPSERT = `
  INSERT INTO notion_pages (user_id, notion_page_id, parent_id, title, url, properties, archived, last_edited_time, synced_at)
  SELECT $1, r.id, r.parent, r.title, r.url, r.props, r.archived, r.edited, $9
  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::boolean[], $8::timestamptz[])
       AS r(id, parent, title, url, props, archived, edited)
  ON CONFLICT (user_id, notion_page_id) DO UPDATE SET
    parent_id = EXCLUDED.parent_id, title = EXCLUDED.title, url = EXCLUDED.url, properties = EXCLUDED.properties,
    archived = EXCLUDED.archived, last_edited_time = EXCLUDED.last_edited_time, synced_at = EXCLUDED.synced_at
  WHERE notion_pages.last_edited_time <= EXCLUDED.last_edited_time`;

/** Stores the pages as the user's copies of them, in one statement: what a pull read, or a push's answer. */
export async function storePages(db: Pool | PoolClient, user: string, rows: readonly PageRow[], syncedAt: Date): Promise<void> {
  await db.query(UPSERT, [
    user,
    rows.map((r) => r.notionPageId),
    rows.map((r) => r.parentId),
    rows.map((r) => r.title),
    rows.map((r) => r.url),
    rows.map((r) => JSON.stringify(r.properties)),
    rows.map((r) => r.archived),
    rows.map((r) => r.lastEditedTime),
    syncedAt,
  ]);
}
