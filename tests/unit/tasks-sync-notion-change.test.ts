// What sync.notion-pages decides about a local change to a Notion page: already in Notion, no
// conflict, or a conflict (values decide while the row holds the change's base version, times
// when it does not, equal minutes counting as unchanged), the request it sends, and what the
// row's pending columns become, also when the change was written again during its push.
import { describe, expect, it } from 'vitest';
import { changedInNotion, decidePush, holdsChange, sameJson, settledColumns, updateRequest, type LocalChange, type PendingColumns, type StoredPage } from '../../task-runner/tasks/sync/notion-change.ts';
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
const storedOf = (p: NotionPage): StoredPage => ({ properties: p.properties ?? {}, archived: p.in_trash === true, lastEditedTime: new Date(p.last_edited_time) });
const title = (text: string) => ({ Name: { title: [{ text: { content: text } }] } });
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

  it('tells an edit in the minute of the base (same last_edited_time) by the values', () => {
    expect(decidePush(change(), page({ title: 'Remote title' }), stored, 'notion-wins', NOW)).toMatchObject({ action: 'keep-notion', conflict: { notion_changed: ['Name'] } });
  });

  it('takes a change Notion holds already as done, whatever the times (a lost answer, the same edit made there)', () => {
    expect(decidePush(change(), page({ lastEdited: LATER, title: 'Lacinato kale' }), stored, 'notion-wins', NOW)).toEqual({ action: 'already-applied' });
    expect(decidePush(change({ properties: {} }), page(), stored, 'notion-wins', NOW)).toEqual({ action: 'already-applied' });
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

  it("counts the trash: Notion's trashing against any change, a restore only against one that moves the page", () => {
    const stored = storedOf(page());
    expect(changedInNotion(change(), page({ lastEdited: LATER, archived: true }), stored)).toEqual(['in_trash']);
    const trashed = storedOf(page({ archived: true }));
    expect(changedInNotion(change(), page({ lastEdited: LATER }), trashed)).toEqual([]);
    expect(changedInNotion(change({ properties: {}, archived: true }), page({ lastEdited: LATER }), trashed)).toEqual(['in_trash']);
  });
});

describe('holdsChange', () => {
  it('matches what the request sets, not what Notion fills in (ids, plain_text, annotations)', () => {
    expect(holdsChange(page({ title: 'Lacinato kale' }), change())).toBe(true);
    expect(holdsChange(page({ title: 'Lacinato kale!' }), change())).toBe(false);
    expect(holdsChange(page({ properties: price(3) }), change({ properties: { Price: { number: 3 } } }))).toBe(true);
    expect(holdsChange(page(), change({ properties: { Nme: { title: [] } } }))).toBe(false);
  });

  it('needs the trash state the change sets', () => {
    expect(holdsChange(page(), change({ properties: {}, archived: true }))).toBe(false);
    expect(holdsChange(page({ archived: true }), change({ properties: {}, archived: true }))).toBe(true);
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
  const pushedPage = page({ lastEdited: LATER, title: 'Lacinato kale' });
  const pushed = { kind: 'pushed' as const, page: pushedPage, before: storedOf(page()), conflict: null };

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

  it('keeps a change written during the push, refused or not', () => {
    const rewritten = change({ since: new Date('2027-03-01T10:31:00.000Z'), properties: { ...title('Lacinato kale'), ...{ Price: { number: 3 } } } });
    expect(settledColumns(columns(rewritten), handled, { kind: 'refused', error: 'x' })).toEqual(columns(rewritten));
    expect(settledColumns(columns(rewritten), handled, { kind: 'already-applied' })).toEqual(columns(rewritten));
  });

  it('rebases a change written during the push onto the pushed version when the push was the only change in between to what it sets', () => {
    const rewritten = change({ since: new Date('2027-03-01T10:31:00.000Z'), properties: { ...title('Cavolo nero'), Price: { number: 3 } } });
    expect(settledColumns(columns(rewritten), handled, pushed)).toEqual(columns({ ...rewritten, base: new Date(LATER) }));
  });

  it('does not rebase it when Notion changed another property it sets meanwhile, or it has another base', () => {
    const rewritten = change({ since: new Date('2027-03-01T10:31:00.000Z'), properties: { ...title('Lacinato kale'), Price: { number: 3 } } });
    const alsoPrice = { ...pushed, page: page({ lastEdited: LATER, title: 'Lacinato kale', properties: price(4) }) };
    expect(settledColumns(columns(rewritten), handled, alsoPrice)).toEqual(columns(rewritten));
    const otherBase = { ...rewritten, base: new Date('2027-03-01T09:00:00.000Z') };
    expect(settledColumns(columns(otherBase), handled, pushed)).toEqual(columns(otherBase));
  });
});

describe('sameJson', () => {
  it('ignores the order of keys (jsonb reorders them), not their values or list order', () => {
    expect(sameJson({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
  });
});
