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
  properties: object;
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
