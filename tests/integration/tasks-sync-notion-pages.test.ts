// sync.notion-pages as a process with the real @notionhq/client against a loopback Notion API:
// paginated search, upserts, an incremental second run from the high-water mark, and a 429
// whose Retry-After is waited out.
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type pg from 'pg';
import { notionRateLimited, startFakeNotion, type FakeNotion } from '../support/fake-notion.ts';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { buildRunner, runRunner } from '../support/runner-process.ts';

const TASK = 'sync.notion-pages';
const TOKEN = 'secret_9Rz2testtoken';
let url: string;
let db: pg.Pool;
let notion: FakeNotion;
let ada: string;

beforeAll(async () => {
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_sync_notion'));
  db = testPool(url);
  notion = await startFakeNotion(TOKEN);
  ada = (await db.query<{ id: string }>("INSERT INTO users (email) VALUES ('ada@example.org') RETURNING id")).rows[0]!.id;
});
afterAll(async () => {
  await notion.close();
  await db.end();
});
beforeEach(async () => {
  await db.query('TRUNCATE notion_pages, notion_connections, task_runs');
  await db.query('INSERT INTO notion_connections (user_id) VALUES ($1)', [ada]);
  notion.pages.length = 0;
  notion.requests.length = 0;
});

const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: url, NOTION_BASE_URL: notion.url, NOTION_TOKEN: TOKEN, ...extra });
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
function addPages(count: number, from: number, editedBase: string): void {
  for (let i = 0; i < count; i++) {
    const edited = new Date(new Date(editedBase).getTime() + i * 60_000).toISOString();
    notion.pages.push({ id: uuid(from + i), title: `Page ${from + i}`, lastEdited: edited });
  }
}
async function stored() {
  const { rows } = await db.query('SELECT notion_page_id, title, url, archived, last_edited_time, parent_id FROM notion_pages WHERE user_id = $1 ORDER BY notion_page_id', [ada]);
  return rows as { notion_page_id: string; title: string; url: string; archived: boolean; last_edited_time: Date; parent_id: string | null }[];
}

describe(TASK, () => {
  it('walks every search page, upserts the pages and remembers the newest edit', async () => {
    addPages(250, 1, '2027-01-01T00:00:00Z');
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_synced: 250, requests: 3, connections: 1, connections_failed: 0 });
    const searches = notion.searches();
    expect(searches.map((s) => s.start_cursor === undefined)).toEqual([true, false, false]);
    expect(searches[0]).toMatchObject({ page_size: 100, sort: { timestamp: 'last_edited_time', direction: 'descending' }, filter: { property: 'object', value: 'page' } });
    expect(notion.requests[0]!.headers['notion-version']).toBeTruthy();
    const rows = await stored();
    expect(rows).toHaveLength(250);
    expect(rows[0]).toMatchObject({ notion_page_id: uuid(1), title: 'Page 1', archived: false, parent_id: 'd9824bdc-8445-4327-be8b-5b47500af6ce' });
    expect(rows[0]!.url).toBe(`https://www.notion.so/Page-1-${uuid(1).replaceAll('-', '')}`);
    const mark = await db.query('SELECT high_water_mark, last_error FROM notion_connections WHERE user_id = $1', [ada]);
    expect(mark.rows[0]).toEqual({ high_water_mark: new Date(new Date('2027-01-01T00:00:00Z').getTime() + 249 * 60_000), last_error: null });
  });

  it('reads only what was edited since the mark on the next run', async () => {
    addPages(150, 1, '2027-01-01T00:00:00Z');
    expect((await runRunner(['run', TASK], env())).code).toBe(0);
    // Three new pages and one old page edited again, all after the mark.
    addPages(3, 1000, '2027-02-01T00:00:00Z');
    const edited = notion.pages.find((p) => p.id === uuid(7))!;
    edited.lastEdited = '2027-02-02T00:00:00.000Z';
    edited.title = 'Page 7 renamed';
    edited.archived = true;
    notion.requests.length = 0;
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    // Newest first: the four edited pages, plus those at the mark itself (minute rounding), then the walk stops.
    expect(exit.result?.summary).toMatchObject({ requests: 1, pages_synced: 5, pages_archived: 1 });
    const rows = await stored();
    expect(rows).toHaveLength(153);
    expect(rows.find((r) => r.notion_page_id === uuid(7))).toMatchObject({ title: 'Page 7 renamed', archived: true });
  });

  it('waits out a 429 with Retry-After and completes', async () => {
    addPages(120, 1, '2027-01-01T00:00:00Z');
    notion.script([notionRateLimited(2)], '/v1/search');
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_synced: 120, requests: 2 });
    const times = notion.requests.map((r) => r.at);
    expect(times).toHaveLength(3); // the 429, its retry, the second page
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1950);
    expect(await stored()).toHaveLength(120);
  });

  it('fails a connection whose token variable is not set, naming it, and exits 1', async () => {
    const exit = await runRunner(['run', TASK], env({ NOTION_TOKEN: '' }));
    expect(exit.code).toBe(1);
    expect(exit.result?.message).toBe(`1 of 1 Notion connections failed to sync: user ${ada}: NOTION_TOKEN (the Notion token of user ${ada}) is not set`);
    expect(notion.requests).toHaveLength(0);
  });

  it("fails with Notion's message on a refused token", async () => {
    const exit = await runRunner(['run', TASK], env({ NOTION_TOKEN: 'secret_wrong' }));
    expect(exit.code).toBe(1);
    expect(exit.result?.message).toContain('API token is invalid.');
    const { rows } = await db.query('SELECT high_water_mark, last_error FROM notion_connections WHERE user_id = $1', [ada]);
    expect(rows[0].high_water_mark).toBeNull();
    expect(rows[0].last_error).toContain('API token is invalid.');
  });
});
