// sync.notion-pages as a process with the real @notionhq/client against a loopback Notion API:
// paginated search, upserts, an incremental second run from the high-water mark, and a 429
// whose Retry-After is waited out; then the local changes it pushes (pages.retrieve/update):
// stored as Notion answers, conflicts under either policy, refusals, a pull meanwhile, a dry run.
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type pg from 'pg';
import { notionRateLimited, pageObject, startFakeNotion, type FakeNotion } from '../support/fake-notion.ts';
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

// The application's side of migration 0016, as its comments give it: a change merged
// into the pending one, based on $5 ($seen: the row's last_edited_time as the user's view read it).
const RECORD_CHANGE = `
  UPDATE notion_pages SET pending_properties = coalesce(pending_properties, '{}') || $3::jsonb,
    pending_archived = coalesce($4, pending_archived), pending_base = coalesce(pending_base, $5),
    pending_since = now(), push_error = NULL, push_attempts = 0, push_last_failure = NULL
  WHERE user_id = $1 AND notion_page_id = $2`;

describe(`${TASK}: local changes pushed to Notion`, () => {
  /** The start of the minute `n` minutes ago: Notion's last_edited_time has whole minutes. */
  const minutesAgo = (n: number) => new Date((Math.floor(Date.now() / 60_000) - n) * 60_000).toISOString();
  const title = (text: string) => ({ Name: { title: [{ text: { content: text } }] } });
  const fake = (id: string) => notion.pages.find((p) => p.id === id)!;
  /** A change the user saves from a view that read the row at `seen` (default: a view read now). */
  async function record(page: string, properties: object, archived: boolean | null = null, seen?: Date): Promise<void> {
    const { rowCount } = await db.query(RECORD_CHANGE, [ada, page, JSON.stringify(properties), archived, seen ?? (await row(page)).last_edited_time]);
    expect(rowCount).toBe(1);
  }
  async function row(page: string) {
    const { rows } = await db.query(
      `SELECT title, properties, archived, last_edited_time, pending_properties, pending_archived, pending_base, pending_since, push_error, conflict,
         push_attempts, push_last_failure
       FROM notion_pages WHERE user_id = $1 AND notion_page_id = $2`,
      [ada, page],
    );
    return rows[0] as {
      title: string;
      properties: Record<string, { number?: number; title?: { plain_text: string }[] }>;
      archived: boolean;
      last_edited_time: Date;
      pending_properties: object | null;
      pending_archived: boolean | null;
      pending_base: Date | null;
      pending_since: Date | null;
      push_error: string | null;
      conflict: Record<string, unknown> | null;
      push_attempts: number;
      push_last_failure: string | null;
    };
  }
  const cleared = { pending_properties: null, pending_archived: null, pending_base: null, pending_since: null, push_error: null };
  /** Two pages edited in Notion a while ago, mirrored by a first run. */
  async function mirrored(): Promise<void> {
    notion.pages.push({ id: uuid(1), title: 'Tuscan kale', lastEdited: minutesAgo(30) }, { id: uuid(2), title: 'Rainbow chard', lastEdited: minutesAgo(20) });
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    notion.requests.length = 0;
  }
  const run = (params: object = {}, ...flags: string[]) => runRunner(['run', TASK, '--params', JSON.stringify(params), ...flags], env());

  it('pushes a local title change before the pull, stores what Notion answers, and does not take that write for an edit in Notion', async () => {
    await mirrored();
    await record(uuid(1), title('Lacinato kale'));
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 0, pushes_failed: 0, requests: 3 });
    expect(exit.result?.message).toBe('synced the Notion pages of 1 user, pushed 1 local change');
    // Retrieved (to check for edits in Notion), updated, then the pull's search.
    expect(notion.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /v1/pages/${uuid(1)}`, `PATCH /v1/pages/${uuid(1)}`, 'POST /v1/search']);
    expect(notion.updates()).toEqual([{ page: uuid(1), body: { properties: title('Lacinato kale') } }]);
    // Only the property named changed in Notion.
    expect(fake(uuid(1))).toMatchObject({ title: 'Lacinato kale' });
    expect((pageObject(fake(uuid(1))) as { properties: { Price: { number: number } } }).properties.Price.number).toBe(2.5);
    const stored = await row(uuid(1));
    expect(stored).toMatchObject({ title: 'Lacinato kale', last_edited_time: new Date(fake(uuid(1)).lastEdited), conflict: null, ...cleared });
    expect(stored.properties.Price!.number).toBe(2.5);

    // The user renames it again from what they now see: Notion's version is this task's own
    // write, so it is no edit in Notion to settle.
    await record(uuid(1), title('Cavolo nero'));
    notion.requests.length = 0;
    const again = await run();
    expect(again.code, again.stdout).toBe(0);
    expect(again.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 0 });
    expect(notion.updates()).toEqual([{ page: uuid(1), body: { properties: title('Cavolo nero') } }]);
    expect(await row(uuid(1))).toMatchObject({ title: 'Cavolo nero', conflict: null, ...cleared });

    // Nothing pending: nothing retrieved or sent.
    notion.requests.length = 0;
    const idle = await run();
    expect(idle.result?.summary).toMatchObject({ pages_pushed: 0, requests: 1 });
    expect(notion.requests.map((r) => r.method)).toEqual(['POST']);
  });

  it('a change saved from a view older than the push is no conflict with that push: the view showed the pushed change pending', async () => {
    await mirrored();
    const seen = (await row(uuid(1))).last_edited_time;
    await record(uuid(1), title('Lacinato kale'), null, seen);
    expect((await run()).code).toBe(0);
    expect((await row(uuid(1))).last_edited_time).not.toEqual(seen); // the push's answer: a later minute
    // Saved from the same view, which read the row before the push.
    await record(uuid(1), { Price: { number: 3 } }, null, seen);
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 0 });
    const stored = await row(uuid(1));
    expect(stored).toMatchObject({ title: 'Lacinato kale', conflict: null, ...cleared });
    expect(stored.properties.Price!.number).toBe(3);
  });

  it('a change saved from a view older than the push still meets an edit in Notion made before the push, which that view did not show', async () => {
    await mirrored();
    const seen = (await row(uuid(1))).last_edited_time;
    await record(uuid(1), title('Lacinato kale'), null, seen);
    notion.edit(uuid(1), { properties: { Price: { number: 4 } } });
    expect((await run()).result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 0 });
    await record(uuid(1), { Price: { number: 3 } }, null, seen);
    const exit = await run();
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 0, conflicts_resolved: 1 });
    expect(fake(uuid(1)).properties!.Price!.number).toBe(4);
    expect((await row(uuid(1))).conflict).toMatchObject({ notion_changed: ['Price'], discarded: { side: 'local', properties: { Price: { number: 3 } } } });
  });

  it("stores Notion's answer with the push itself: with the pull failing after it, the next change still meets no conflict with that write", async () => {
    await mirrored();
    await record(uuid(1), title('Lacinato kale'));
    notion.script([{ status: 500, body: { object: 'error', status: 500, code: 'internal_server_error', message: 'Unexpected error occurred.' } }], '/v1/search');
    const exit = await run({ maxRetries: 0 });
    expect(exit.code).toBe(1);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, connections_failed: 1 });
    expect(await row(uuid(1))).toMatchObject({ title: 'Lacinato kale', last_edited_time: new Date(fake(uuid(1)).lastEdited), ...cleared });

    await record(uuid(1), title('Cavolo nero'));
    const again = await run();
    expect(again.code, again.stdout).toBe(0);
    expect(again.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 0 });
    expect(fake(uuid(1)).title).toBe('Cavolo nero');
  });

  it('moves a page to the trash: in_trash sent alone, the trashed page stored', async () => {
    await mirrored();
    await record(uuid(2), {}, true);
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(notion.updates()).toEqual([{ page: uuid(2), body: { in_trash: true } }]);
    expect(fake(uuid(2)).archived).toBe(true);
    expect(await row(uuid(2))).toMatchObject({ archived: true, title: 'Rainbow chard', ...cleared });
  });

  it("notion-wins: a title edited in Notion since the user's version stays, the local change is discarded into conflict", async () => {
    await mirrored();
    const base = (await row(uuid(1))).last_edited_time;
    await record(uuid(1), title('Local title'));
    const since = (await row(uuid(1))).pending_since!;
    notion.edit(uuid(1), { properties: title('Remote title') });
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 0, conflicts_resolved: 1, pushes_failed: 0 });
    expect(exit.result?.message).toBe('synced the Notion pages of 1 user; 1 conflict with edits in Notion settled by notion-wins (see notion_pages.conflict)');
    expect(notion.updates()).toEqual([]);
    expect(fake(uuid(1)).title).toBe('Remote title');
    const stored = await row(uuid(1));
    expect(stored).toMatchObject({ title: 'Remote title', last_edited_time: new Date(fake(uuid(1)).lastEdited), ...cleared });
    expect(stored.conflict).toEqual({
      resolved_at: expect.any(String),
      policy: 'notion-wins',
      base: base.toISOString(),
      notion_last_edited_time: fake(uuid(1)).lastEdited,
      notion_changed: ['Name'],
      discarded: { side: 'local', properties: title('Local title'), archived: null, since: since.toISOString() },
    });
  });

  it('notion-wins: an edit in Notion within the minute of the base, which times cannot tell, is told by the values', async () => {
    await mirrored();
    const base = (await row(uuid(1))).last_edited_time;
    await record(uuid(1), title('Local title'));
    notion.edit(uuid(1), { properties: title('Remote title') }, base.toISOString());
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 0, conflicts_resolved: 1 });
    expect(notion.updates()).toEqual([]);
    expect((await row(uuid(1))).conflict).toMatchObject({ notion_changed: ['Name'], notion_last_edited_time: base.toISOString() });
  });

  it('an edit in Notion to another property is no conflict: the change is sent and both are kept', async () => {
    await mirrored();
    await record(uuid(1), title('Local title'));
    notion.edit(uuid(1), { properties: { Price: { number: 4 } } });
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 0 });
    const stored = await row(uuid(1));
    expect(stored).toMatchObject({ title: 'Local title', conflict: null, ...cleared });
    expect(stored.properties.Price!.number).toBe(4);
  });

  it("local-wins: the change is sent over the edit in Notion, Notion's replaced value kept in conflict", async () => {
    await mirrored();
    await record(uuid(1), title('Local title'));
    notion.edit(uuid(1), { properties: title('Remote title') });
    const exit = await run({ conflictPolicy: 'local-wins' });
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 1 });
    expect(exit.result?.message).toBe('synced the Notion pages of 1 user, pushed 1 local change; 1 conflict with edits in Notion settled by local-wins (see notion_pages.conflict)');
    expect(notion.updates()).toEqual([{ page: uuid(1), body: { properties: title('Local title') } }]);
    expect(fake(uuid(1)).title).toBe('Local title');
    const stored = await row(uuid(1));
    expect(stored).toMatchObject({ title: 'Local title', last_edited_time: new Date(fake(uuid(1)).lastEdited), ...cleared });
    expect(stored.conflict).toMatchObject({ policy: 'local-wins', notion_changed: ['Name'], discarded: { side: 'notion', archived: null } });
    const replaced = (stored.conflict!.discarded as { properties: { Name: { title: { plain_text: string }[] } } }).properties.Name;
    expect(replaced.title.map((t) => t.plain_text).join('')).toBe('Remote title');
  });

  it('keeps a change Notion refuses (validation_error) with its push_error, pushes the others and still pulls; the run succeeds and says so', async () => {
    await mirrored();
    await record(uuid(1), { Nme: { title: [{ text: { content: 'Typo' } }] } });
    await record(uuid(2), title('Swiss chard'));
    notion.pages.push({ id: uuid(3), title: 'New in Notion', lastEdited: minutesAgo(1) });
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, pushes_failed: 1, connections_failed: 0 });
    expect(exit.result?.message).toBe(
      `synced the Notion pages of 1 user, pushed 1 local change; 1 local change refused by Notion, kept pending (see notion_pages.push_error): user ${ada} page ${uuid(1)}: Nme is not a property that exists.`,
    );
    const refused = await row(uuid(1));
    expect(refused).toMatchObject({ title: 'Tuscan kale', push_error: 'Nme is not a property that exists.', pending_properties: { Nme: { title: [{ text: { content: 'Typo' } }] } } });
    expect(refused.pending_base).not.toBeNull();
    expect(await row(uuid(2))).toMatchObject({ title: 'Swiss chard', ...cleared });
    expect(await row(uuid(3))).toMatchObject({ title: 'New in Notion' });

    // Not sent again until the application writes the change anew.
    notion.requests.length = 0;
    const again = await run();
    expect(again.result?.summary).toMatchObject({ pages_pushed: 0, pushes_failed: 0 });
    expect(notion.retrievals()).toEqual([]);
  });

  it('keeps a change to a page Notion no longer has (object_not_found) with its push_error', async () => {
    await mirrored();
    await record(uuid(2), title('Gone'));
    notion.pages.splice(notion.pages.findIndex((p) => p.id === uuid(2)), 1);
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 0, pushes_failed: 1 });
    const stored = await row(uuid(2));
    expect(stored.push_error).toBe(`Could not find page with ID: ${uuid(2)}. Make sure the relevant pages and databases are shared with your integration.`);
    expect(stored.pending_properties).toEqual(title('Gone'));
    expect(notion.updates()).toEqual([]);
  });

  it('a pull while a change waits updates Notion\'s copy and keeps the change, which the next push then settles against the newer version', async () => {
    await mirrored();
    const base = (await row(uuid(1))).last_edited_time;
    await record(uuid(1), title('Local title'));
    const pending = await row(uuid(1));
    notion.edit(uuid(1), { properties: { Price: { number: 4 } } });
    const pull = await run({ maxPushes: 0 });
    expect(pull.code, pull.stdout).toBe(0);
    expect(pull.result?.summary).toMatchObject({ pages_pushed: 0, pages_synced: 2 }); // the edited page, and the one at the mark
    const pulled = await row(uuid(1));
    expect(pulled.properties.Price!.number).toBe(4);
    expect(pulled.last_edited_time).toEqual(new Date(fake(uuid(1)).lastEdited));
    expect(pulled).toMatchObject({ title: 'Tuscan kale', pending_properties: title('Local title'), pending_base: base, pending_since: pending.pending_since, push_error: null });

    // The row no longer holds the version the change was made on: only the times can tell, and
    // they say the page changed, so the whole page counts as changed in Notion.
    const push = await run();
    expect(push.result?.summary).toMatchObject({ pages_pushed: 0, conflicts_resolved: 1 });
    expect(await row(uuid(1))).toMatchObject({ title: 'Tuscan kale', conflict: { notion_changed: null, discarded: { side: 'local', properties: title('Local title') } }, ...cleared });
  });

  it('a push whose answer was lost is no conflict: the change merged into it since is sent whole', async () => {
    await mirrored();
    await record(uuid(1), title('Lacinato kale'));
    // pages.update applied, its answer lost: the change stays pending on its base, and the user adds to it.
    notion.edit(uuid(1), { properties: title('Lacinato kale') });
    await record(uuid(1), { Price: { number: 3 } });
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 0 });
    expect(notion.updates()).toEqual([{ page: uuid(1), body: { properties: { ...title('Lacinato kale'), Price: { number: 3 } } } }]);
    const stored = await row(uuid(1));
    expect(stored).toMatchObject({ title: 'Lacinato kale', last_edited_time: new Date(fake(uuid(1)).lastEdited), conflict: null, ...cleared });
    expect(stored.properties.Price!.number).toBe(3);
  });

  it('sends a change Notion holds only in the keys the request names: bold taken off a title by sending it plain', async () => {
    notion.pages.push({ id: uuid(1), title: 'Tuscan kale', lastEdited: minutesAgo(30) });
    notion.edit(uuid(1), { properties: { Name: { title: [{ text: { content: 'Tuscan kale' }, annotations: { bold: true } }] } } }, minutesAgo(30));
    expect((await run()).code).toBe(0);
    await record(uuid(1), title('Tuscan kale'));
    notion.requests.length = 0;
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 0 });
    expect(notion.updates()).toEqual([{ page: uuid(1), body: { properties: title('Tuscan kale') } }]);
    const name = (await row(uuid(1))).properties.Name as unknown as { title: { annotations: { bold: boolean } }[] };
    expect(name.title[0]!.annotations.bold).toBe(false);
  });

  it("a change to a files property is no conflict with the signed url Notion gives a hosted file anew on each read", async () => {
    const photo = { id: 'f%7Cx', type: 'files', files: [{ name: 'kale.jpg', type: 'file', file: { url: 'https://prod-files-secure.s3.us-west-2.amazonaws.com/a/b/kale.jpg', expiry_time: minutesAgo(0) } }] };
    notion.pages.push({ id: uuid(1), title: 'Tuscan kale', lastEdited: minutesAgo(30), properties: { Photo: photo } });
    expect((await run()).code).toBe(0);
    const chard = { Photo: { files: [{ name: 'chard.jpg', type: 'external', external: { url: 'https://example.org/chard.jpg' } }] } };
    await record(uuid(1), chard);
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 0 });
    expect((await row(uuid(1))).properties.Photo).toEqual({ id: 'f%7Cx', type: 'files', ...chard.Photo });
  });

  const serverError = { status: 500, body: { object: 'error', status: 500, code: 'internal_server_error', message: 'Unexpected error occurred.' } };
  /** The next update of the page answered `response` (its retrieve answered as usual). */
  const failNextUpdate = (page: string, response: { status: number; body: object }) => notion.script([{ status: 200, body: pageObject(fake(page)) }, response], `/v1/pages/${page}`);

  it('counts a push failing past the retries (5xx) on its row, pushes the others, still pulls, and fails the connection; gives it up at maxPushAttempts', async () => {
    await mirrored();
    await record(uuid(1), title('Lacinato kale'));
    await record(uuid(2), title('Swiss chard'));
    notion.pages.push({ id: uuid(3), title: 'New in Notion', lastEdited: minutesAgo(1) });
    failNextUpdate(uuid(1), serverError);
    const params = { maxRetries: 0, maxPushAttempts: 2 };
    const exit = await run(params);
    expect(exit.code).toBe(1);
    expect(exit.result?.message).toBe(`1 of 1 Notion connections failed to sync: user ${ada}: 1 local change failed to push, kept for the next run: page ${uuid(1)}: Unexpected error occurred.`);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, push_attempts_failed: 1, pushes_failed: 0, connections_failed: 1 });
    expect(await row(uuid(1))).toMatchObject({ title: 'Tuscan kale', pending_properties: title('Lacinato kale'), push_error: null, push_attempts: 1, push_last_failure: 'Unexpected error occurred.' });
    expect(await row(uuid(2))).toMatchObject({ title: 'Swiss chard', push_attempts: 0, ...cleared });
    expect(await row(uuid(3))).toMatchObject({ title: 'New in Notion' });

    failNextUpdate(uuid(1), serverError);
    const second = await run(params);
    expect(second.code).toBe(1);
    const gaveUp = 'gave up after 2 failed attempts, the last: Unexpected error occurred.';
    expect(second.result?.message).toContain(`page ${uuid(1)}: ${gaveUp} (see notion_pages.push_error)`);
    expect(second.result?.summary).toMatchObject({ push_attempts_failed: 1, pushes_failed: 1 });
    expect(await row(uuid(1))).toMatchObject({ push_error: gaveUp, push_attempts: 2, pending_properties: title('Lacinato kale') });

    // Given up: not sent again until the application writes it anew, a new change with attempts of its own.
    notion.requests.length = 0;
    const third = await run(params);
    expect(third.code, third.stdout).toBe(0);
    expect(notion.retrievals()).toEqual([]);
    await record(uuid(1), title('Lacinato kale'));
    const fourth = await run(params);
    expect(fourth.code, fourth.stdout).toBe(0);
    expect(await row(uuid(1))).toMatchObject({ title: 'Lacinato kale', push_attempts: 0, push_last_failure: null, ...cleared });
  });

  it('fails the connection on restricted_resource to an update (the token lacks the capability), leaving every change pending without a push_error', async () => {
    await mirrored();
    await record(uuid(1), title('Lacinato kale'));
    await record(uuid(2), title('Swiss chard'));
    failNextUpdate(uuid(1), { status: 403, body: { object: 'error', status: 403, code: 'restricted_resource', message: 'Insufficient permissions for this endpoint.' } });
    const exit = await run();
    expect(exit.code).toBe(1);
    expect(exit.result?.message).toContain(`user ${ada}: pushing the local change to Notion page ${uuid(1)} failed: Notion refused to update the page (restricted_resource): the integration lacks the 'Update content' capability`);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 0, pushes_failed: 0, connections_failed: 1 });
    for (const page of [uuid(1), uuid(2)]) expect(await row(page)).toMatchObject({ push_error: null, push_attempts: 0, pending_properties: expect.any(Object) });
  });

  it('local-wins over a page trashed in Notion takes it out of the trash with the properties sent', async () => {
    await mirrored();
    await record(uuid(1), title('Local title'));
    notion.edit(uuid(1), { in_trash: true });
    const exit = await run({ conflictPolicy: 'local-wins' });
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 1, pushes_failed: 0 });
    expect(notion.updates()).toEqual([{ page: uuid(1), body: { properties: title('Local title'), in_trash: false } }]);
    expect(fake(uuid(1))).toMatchObject({ title: 'Local title', archived: false });
    expect(await row(uuid(1))).toMatchObject({ title: 'Local title', archived: false, conflict: { notion_changed: ['in_trash'], discarded: { side: 'notion', archived: true } }, ...cleared });
  });

  it('stores the page as read when Notion refuses its update, the pull failing after', async () => {
    await mirrored();
    await record(uuid(1), { Nme: { title: [{ text: { content: 'Typo' } }] } });
    notion.edit(uuid(1), { properties: { Price: { number: 4 } } });
    notion.script([serverError], '/v1/search');
    const exit = await run({ maxRetries: 0 });
    expect(exit.result?.summary).toMatchObject({ pushes_failed: 1, connections_failed: 1 });
    const stored = await row(uuid(1));
    expect(stored).toMatchObject({ push_error: 'Nme is not a property that exists.', last_edited_time: new Date(fake(uuid(1)).lastEdited) });
    expect(stored.properties.Price!.number).toBe(4);
  });

  it("takes a partial page in the update's answer for an update applied, not a refusal", async () => {
    await mirrored();
    await record(uuid(1), title('Lacinato kale'));
    notion.script([{ status: 200, body: pageObject(fake(uuid(1))) }, { status: 200, body: { object: 'page', id: uuid(1) } }], `/v1/pages/${uuid(1)}`);
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, pushes_failed: 0 });
    expect(await row(uuid(1))).toMatchObject({ conflict: null, ...cleared });
  });

  it("never stores a version older than the row's: Notion's search lags behind the push's answer", async () => {
    await mirrored();
    const before = pageObject(fake(uuid(2))); // what a lagging search index still holds
    await record(uuid(2), title('Swiss chard'));
    notion.script([{ status: 200, body: { object: 'list', results: [before], next_cursor: null, has_more: false, type: 'page_or_data_source', page_or_data_source: {} } }], '/v1/search');
    const exit = await run();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, pages_synced: 1 });
    expect(await row(uuid(2))).toMatchObject({ title: 'Swiss chard', last_edited_time: new Date(fake(uuid(2)).lastEdited) });
  });

  it('dry run: sends and stores nothing, and counts what would be pushed, settled and refused', async () => {
    await mirrored();
    await record(uuid(1), title('Local title'));
    await record(uuid(2), title('Swiss chard'));
    notion.edit(uuid(1), { properties: title('Remote title') });
    notion.pages.push({ id: uuid(9), title: 'Soon gone', lastEdited: minutesAgo(40) });
    await db.query("INSERT INTO notion_pages (user_id, notion_page_id, title, last_edited_time) VALUES ($1, $2, 'Soon gone', $3)", [ada, uuid(9), minutesAgo(40)]);
    await record(uuid(9), title('Still gone'));
    notion.pages.pop();
    const before = await db.query('SELECT * FROM notion_pages ORDER BY id');
    const exit = await run({}, '--dry-run');
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ pages_pushed: 1, conflicts_resolved: 1, pushes_failed: 1 });
    expect(exit.result?.message).toBe(
      `dry run: read the Notion pages of 1 user, nothing sent or stored; 1 local change would be pushed; 1 conflict with edits in Notion would be settled by notion-wins; ` +
        `1 local change would be refused by Notion: user ${ada} page ${uuid(9)}: Could not find page with ID: ${uuid(9)}. Make sure the relevant pages and databases are shared with your integration.`,
    );
    expect(notion.updates()).toEqual([]);
    expect((await db.query('SELECT * FROM notion_pages ORDER BY id')).rows).toEqual(before.rows);
  });
});
