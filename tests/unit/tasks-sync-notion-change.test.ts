// What sync.notion-pages decides about a local change to a Notion page: already in Notion, no
// conflict, or a conflict (values decide while the row holds the change's base version, times
// when it does not, equal minutes counting as unchanged), the request it sends, and what the
// row's pending columns become, also when the change was written again during its push.
import { describe, expect, it } from 'vitest';
import { changedInNotion, decidePush, pushRecord, sameJson, sentChange, settledColumns, updateRequest, type LastPush, type LocalChange, type PendingColumns, type StoredPage } from '../../task-runner/tasks/sync/notion-change.ts';
import type { NotionPage } from '../../task-runner/tasks/sync/notion-page-row.ts';
import { pageObject, type FakePage } from '../support/fake-notion.ts';

const ID = '59833787-2cf9-4fdf-8782-e53db20768a5';
const BASE = '2027-03-01T10:00:00.000Z';
const LATER = '2027-03-01T10:07:00.000Z';
const NOW = new Date('2027-03-01T11:00:00.000Z');

/** The recorded page object (Name "Tuscan kale", Price 2.5), as Notion returns it. */
const page = (over: Partial<FakePage> = {}): NotionPage => pageObject({ id: ID, title: 'Tuscan kale', lastEdited: BASE, ...over }) as NotionPage;
const price = (n: number) => ({ Price: { id: 'BJXS', type: 'number', number: n } });
/** The row's copy of `p`. */
const storedOf = (p: NotionPage, lastPush: LastPush | null = null): StoredPage => ({
  properties: p.properties ?? {},
  archived: p.in_trash === true,
  lastEditedTime: new Date(p.last_edited_time),
  lastPush,
});
const title = (text: string) => ({ Name: { title: [{ text: { content: text } }] } });
/** A plain text item as Notion returns it. */
const plain = (text: string) => ({
  type: 'text',
  text: { content: text, link: null },
  annotations: { bold: false, italic: false, strikethrough: false, underline: false, code: false, color: 'default' },
  plain_text: text,
  href: null,
});
const change = (over: Partial<LocalChange> = {}): LocalChange => ({
  properties: title('Lacinato kale'),
  archived: null,
  base: new Date(BASE),
  since: new Date('2027-03-01T10:30:00.000Z'),
  ...over,
});

describe('decidePush', () => {
  const stored = storedOf(page());

  it('sends a change to a page Notion has not changed since its base', () => {
    expect(decidePush(change(), page(), stored, 'notion-wins', NOW)).toEqual({ action: 'send', conflict: null });
  });

  it('sends it when Notion changed only other properties (or the blocks): pages.update changes only those it names', () => {
    expect(decidePush(change(), page({ lastEdited: LATER, properties: price(4) }), stored, 'notion-wins', NOW)).toEqual({ action: 'send', conflict: null });
  });

  it('notion-wins: keeps a title Notion changed since the base and discards the change into the record', () => {
    const c = change();
    expect(decidePush(c, page({ lastEdited: LATER, title: 'Remote title' }), stored, 'notion-wins', NOW)).toEqual({
      action: 'keep-notion',
      conflict: {
        resolved_at: NOW.toISOString(),
        policy: 'notion-wins',
        base: BASE,
        notion_last_edited_time: LATER,
        notion_changed: ['Name'],
        discarded: { side: 'local', properties: c.properties, archived: null, since: c.since.toISOString() },
      },
    });
  });

  it("local-wins: sends it, recording Notion's values it replaces", () => {
    const notion = page({ lastEdited: LATER, title: 'Remote title' });
    const decision = decidePush(change(), notion, stored, 'local-wins', NOW);
    expect(decision).toMatchObject({ action: 'send', conflict: { policy: 'local-wins', notion_changed: ['Name'], discarded: { side: 'notion', properties: { Name: notion.properties!.Name }, archived: null } } });
  });

  it('local-wins over a page Notion put in its trash: sends the properties with in_trash false (Notion edits no trashed page)', () => {
    const decision = decidePush(change(), page({ lastEdited: LATER, archived: true }), stored, 'local-wins', NOW);
    expect(decision).toMatchObject({ action: 'send', restore: true, conflict: { notion_changed: ['in_trash'], discarded: { side: 'notion', archived: true } } });
    if (decision.action !== 'send') throw new Error('expected a send');
    expect(updateRequest(ID, sentChange(change(), decision))).toEqual({ page_id: ID, properties: title('Lacinato kale'), in_trash: false });
    expect(decidePush(change(), page({ lastEdited: LATER, title: 'Remote' }), stored, 'local-wins', NOW)).not.toHaveProperty('restore');
  });

  it('tells an edit in the minute of the base (same last_edited_time) by the values', () => {
    expect(decidePush(change(), page({ title: 'Remote title' }), stored, 'notion-wins', NOW)).toMatchObject({ action: 'keep-notion', conflict: { notion_changed: ['Name'] } });
  });

  it('sends a change whose values Notion holds already in part (a push whose answer was lost, then one more edit merged in), no conflict', () => {
    const merged = change({ properties: { ...title('Lacinato kale'), Price: { number: 3 } } });
    expect(decidePush(merged, page({ lastEdited: LATER, title: 'Lacinato kale' }), stored, 'notion-wins', NOW)).toEqual({ action: 'send', conflict: null });
  });

  it('sends a change Notion seems to hold but for what the request leaves out: bold dropped from a title, the end of a date range', () => {
    const bold = page({ properties: { Name: { id: 'title', type: 'title', title: [{ ...plain('Lacinato kale'), annotations: { ...plain('').annotations, bold: true } }] } } });
    expect(decidePush(change(), bold, storedOf(bold), 'notion-wins', NOW)).toEqual({ action: 'send', conflict: null });
    const range = page({ properties: { When: { id: 'a%3Db', type: 'date', date: { start: '2027-03-02', end: '2027-03-05', time_zone: null } } } });
    expect(decidePush(change({ properties: { When: { date: { start: '2027-03-02' } } } }), range, storedOf(range), 'notion-wins', NOW)).toEqual({ action: 'send', conflict: null });
  });

  it('clears a change that sets nothing without a request', () => {
    expect(decidePush(change({ properties: {} }), page(), stored, 'notion-wins', NOW)).toEqual({ action: 'nothing-to-send' });
  });
});

describe('changedInNotion', () => {
  it('once the row holds another version, has only the times: later is the whole page, the same minute is nothing', () => {
    const pulled = storedOf(page({ lastEdited: LATER }));
    expect(changedInNotion(change(), page({ lastEdited: '2027-03-01T10:09:00.000Z' }), pulled)).toBeNull();
    expect(changedInNotion(change(), page({ lastEdited: BASE, title: 'Remote title' }), storedOf(page({ lastEdited: '2027-03-01T09:00:00.000Z' })))).toEqual([]);
  });

  it('finds a property the change names by its id as well as by its name', () => {
    const byId = change({ properties: { title: { title: [{ text: { content: 'x' } }] }, BJXS: { number: 3 } } });
    expect(changedInNotion(byId, page({ lastEdited: LATER, title: 'Remote title', properties: price(4) }), storedOf(page()))).toEqual(['title', 'BJXS']);
  });

  it('finds a property by its id decoded, however Notion encoded it', () => {
    const qty = (n: number) => ({ Qty: { id: 'x%7C@', type: 'number', number: n } });
    expect(changedInNotion(change({ properties: { 'x|@': { number: 3 } } }), page({ lastEdited: LATER, properties: qty(4) }), storedOf(page({ properties: qty(2) })))).toEqual(['x|@']);
  });

  it("counts the trash: Notion's trashing against any change, a restore only against one that moves the page", () => {
    const stored = storedOf(page());
    expect(changedInNotion(change(), page({ lastEdited: LATER, archived: true }), stored)).toEqual(['in_trash']);
    const trashed = storedOf(page({ archived: true }));
    expect(changedInNotion(change(), page({ lastEdited: LATER }), trashed)).toEqual([]);
    expect(changedInNotion(change({ properties: {}, archived: true }), page({ lastEdited: LATER }), trashed)).toEqual(['in_trash']);
  });

  it('leaves out what Notion changed to exactly the value the change sets, not what matches only in the keys the request names', () => {
    const stored = storedOf(page());
    expect(changedInNotion(change(), page({ lastEdited: LATER, title: 'Lacinato kale' }), stored)).toEqual([]);
    expect(changedInNotion(change({ properties: price(3) }), page({ lastEdited: LATER, properties: price(3) }), stored)).toEqual([]);
    const bold = page({ lastEdited: LATER, properties: { Name: { id: 'title', type: 'title', title: [{ ...plain('Lacinato kale'), annotations: { ...plain('').annotations, bold: true } }] } } });
    expect(changedInNotion(change(), bold, stored)).toEqual(['Name']);
    expect(changedInNotion(change({ properties: {}, archived: true }), page({ lastEdited: LATER, archived: true }), stored)).toEqual([]);
  });

  it("ignores what Notion changes on every read: a hosted file's signed url and expiry_time", () => {
    const files = { Photo: { id: 'f%7Cx', type: 'files', files: [{ name: 'kale.jpg', type: 'file', file: { url: 'https://prod-files-secure.s3.us-west-2.amazonaws.com/a/b/kale.jpg', expiry_time: BASE } }] } };
    const stored = storedOf(page({ properties: files }));
    const next = change({ properties: { Photo: { files: [{ name: 'chard.jpg', type: 'external', external: { url: 'https://example.org/chard.jpg' } }] } } });
    expect(changedInNotion(next, page({ properties: files }), stored)).toEqual([]);
    const replaced = { Photo: { ...files.Photo, files: [{ ...files.Photo.files[0]!, file: { ...files.Photo.files[0]!.file, url: 'https://prod-files-secure.s3.us-west-2.amazonaws.com/a/c/other.jpg' } }] } };
    expect(changedInNotion(next, page({ lastEdited: LATER, properties: replaced }), stored)).toEqual(['Photo']);
  });
});

describe('updateRequest', () => {
  it('sends the properties and in_trash the change sets, nothing else', () => {
    expect(updateRequest(ID, change())).toEqual({ page_id: ID, properties: title('Lacinato kale') });
    expect(updateRequest(ID, change({ properties: {}, archived: true }))).toEqual({ page_id: ID, in_trash: true });
    expect(updateRequest(ID, change({ archived: false }))).toEqual({ page_id: ID, properties: title('Lacinato kale'), in_trash: false });
  });
});

describe('settledColumns', () => {
  const handled = change();
  const earlier = { policy: 'notion-wins', note: 'an older conflict' };
  const columns = (c: LocalChange | null, over: Partial<PendingColumns> = {}): PendingColumns => ({ change: c, pushError: null, conflict: earlier, ...over });
  const pushed = { kind: 'pushed' as const, record: pushRecord(change(), storedOf(page()), page({ lastEdited: LATER, title: 'Lacinato kale' })), conflict: null };

  it('clears the change pushed (and its old push_error), keeping the last conflict unless a new one came', () => {
    expect(settledColumns(columns(change(), { pushError: 'old' }), handled, pushed)).toEqual({ change: null, pushError: null, conflict: earlier });
    const conflict = decidePush(handled, page({ lastEdited: LATER, title: 'Remote' }), storedOf(page()), 'notion-wins', NOW);
    if (conflict.action !== 'keep-notion') throw new Error('expected a conflict');
    expect(settledColumns(columns(change()), handled, { kind: 'kept-notion', conflict: conflict.conflict })).toEqual({ change: null, pushError: null, conflict: conflict.conflict });
  });

  it('keeps a refused change with its push_error', () => {
    expect(settledColumns(columns(change()), handled, { kind: 'refused', error: 'Nme is not a property that exists.' })).toEqual({
      change: handled,
      pushError: 'Nme is not a property that exists.',
      conflict: earlier,
    });
  });

  it('keeps a change written during the push on its base, pushed, refused or not', () => {
    const rewritten = change({ since: new Date('2027-03-01T10:31:00.000Z'), properties: { ...title('Lacinato kale'), ...{ Price: { number: 3 } } } });
    expect(settledColumns(columns(rewritten), handled, { kind: 'refused', error: 'x' })).toEqual(columns(rewritten));
    expect(settledColumns(columns(rewritten), handled, { kind: 'nothing-to-send' })).toEqual(columns(rewritten));
    expect(settledColumns(columns(rewritten), handled, pushed)).toEqual(columns(rewritten));
  });
});

describe('a change made in a view from before the last push ($seen: the version that push was sent from)', () => {
  const before = storedOf(page());
  const answer = page({ lastEdited: LATER, title: 'Lacinato kale' });
  /** The row after pushing change() from `before`: Notion's answer, and the push's record. */
  const pushedRow = (notionAnswer: NotionPage = answer) => storedOf(notionAnswer, pushRecord(change(), before, notionAnswer));
  const next = change({ properties: price(3), since: new Date('2027-03-01T10:40:00.000Z') });

  it('records what Notion changed between the version sent from and its answer, apart from what the push set', () => {
    expect(pushRecord(change(), before, answer)).toEqual({ from: new Date(BASE), as: new Date(LATER), notionChanged: [] });
    expect(pushRecord(change(), before, page({ lastEdited: LATER, title: 'Lacinato kale', properties: price(4), archived: true })).notionChanged).toEqual(['Price', 'BJXS', 'in_trash']);
  });

  it("counts as made on the push's answer: the task's own write is no edit in Notion", () => {
    expect(decidePush(next, answer, pushedRow(), 'notion-wins', NOW)).toEqual({ action: 'send', conflict: null });
  });

  it('still counts what Notion changed before the push (which that view did not show), and an edit after it', () => {
    const priceToo = page({ lastEdited: LATER, title: 'Lacinato kale', properties: price(4) });
    expect(changedInNotion(next, priceToo, pushedRow(priceToo))).toEqual(['Price']);
    expect(changedInNotion(next, page({ lastEdited: LATER, title: 'Lacinato kale', properties: price(5) }), pushedRow())).toEqual(['Price']);
  });

  it('once the row holds a newer version than the answer, has only the times', () => {
    const pulled = { ...storedOf(page({ lastEdited: '2027-03-01T10:09:00.000Z' })), lastPush: pushedRow().lastPush };
    expect(changedInNotion(next, page({ lastEdited: '2027-03-01T10:09:00.000Z' }), pulled)).toBeNull();
  });
});

describe('sameJson', () => {
  it('ignores the order of keys (jsonb reorders them), not their values or list order', () => {
    expect(sameJson({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
  });
});
