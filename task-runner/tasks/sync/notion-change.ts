/**
 * A local change to a Notion page (the pending_* columns of its notion_pages row, migration 0016)
 * and what sync.notion-pages decides about it, without I/O: whether Notion changed what it sets
 * since the version it was made on, the pages.update request, the conflict it leaves on the row,
 * and what becomes of the row's pending columns.
 */
import type { UpdatePageParameters } from '@notionhq/client';
import { pageRow, type NotionPage } from './notion-page-row.ts';

/** The task's conflictPolicy param: whose version a conflict keeps. */
export type ConflictPolicy = 'notion-wins' | 'local-wins';

export interface LocalChange {
  /** Property values as pages.update takes them, keyed by property name or id; empty: none. */
  properties: Record<string, unknown>;
  /** true: into Notion's trash; false: out of it; null: left as it is. */
  archived: boolean | null;
  /** last_edited_time of the version the change was made on. */
  base: Date;
  /** When the change was last written. */
  since: Date;
}

/** The row's copy of the page: what the last pull or push stored. */
export interface StoredPage {
  properties: Record<string, unknown>;
  archived: boolean;
  lastEditedTime: Date;
  /** The row's last push (its pushed_* columns, migration 0016); null: none recorded. */
  lastPush: LastPush | null;
}

/** The row's last push: the version it was sent from, Notion's answer, and what Notion changed in between. */
export interface LastPush {
  /** last_edited_time of the row's copy the push was sent from: the $seen of a view made before it. */
  from: Date;
  /** last_edited_time of Notion's answer, stored as the row's copy. */
  as: Date;
  /** The properties (names and ids) Notion changed between the two apart from the push itself; `in_trash`: the trash state. */
  notionChanged: string[];
}

/** notion_pages.conflict: the last conflict settled, what it discarded and why. */
export interface ConflictRecord {
  resolved_at: string;
  policy: ConflictPolicy;
  base: string;
  notion_last_edited_time: string;
  /** What the change sets that Notion changed since its base (`in_trash`: the trash state); null: the page as a whole. */
  notion_changed: string[] | null;
  discarded: {
    /** local: the change (notion-wins); notion: Notion's values the change replaced (local-wins). */
    side: 'local' | 'notion';
    properties: Record<string, unknown>;
    archived: boolean | null;
    /** The discarded change's pending_since. */
    since?: string;
  };
}

export type PushDecision =
  /** The change sets nothing (no property, no trash state): cleared without a request. */
  | { action: 'nothing-to-send' }
  /** Send it; with a conflict under local-wins, restore: taking the page out of Notion's trash too (sentChange). */
  | { action: 'send'; conflict: ConflictRecord | null; restore?: true }
  /** A conflict under notion-wins: Notion's version stays, the change is discarded. */
  | { action: 'keep-notion'; conflict: ConflictRecord };

/**
 * What to do with the change, given Notion's page now and the row's copy. A conflict settles the
 * change whole, never property by property: the properties of one change may belong together (a
 * status and its date), and the record keeps what was discarded for the application to offer again.
 */
export function decidePush(change: LocalChange, page: NotionPage, stored: StoredPage, policy: ConflictPolicy, now: Date): PushDecision {
  if (Object.keys(change.properties).length === 0 && change.archived === null) return { action: 'nothing-to-send' };
  const changed = changedInNotion(change, page, stored);
  if (changed !== null && changed.length === 0) return { action: 'send', conflict: null };
  const notion = pageRow(page);
  // Notion edits no page in its trash: properties winning over Notion's trashing take it out.
  const restore = policy === 'local-wins' && notion.archived && change.archived === null && Object.keys(change.properties).length > 0;
  const conflict: ConflictRecord = {
    resolved_at: now.toISOString(),
    policy,
    base: change.base.toISOString(),
    notion_last_edited_time: notion.lastEditedTime.toISOString(),
    notion_changed: changed,
    discarded:
      policy === 'notion-wins'
        ? { side: 'local', properties: change.properties, archived: change.archived, since: change.since.toISOString() }
        : {
            side: 'notion',
            properties: Object.fromEntries(Object.keys(change.properties).map((key) => [key, propertyValue(notion.properties, key) ?? null])),
            archived: change.archived === null && !restore ? null : notion.archived,
          },
  };
  if (policy === 'notion-wins') return { action: 'keep-notion', conflict };
  return restore ? { action: 'send', conflict, restore } : { action: 'send', conflict };
}

/** The change a 'send' decision sends. */
export function sentChange(change: LocalChange, decision: { restore?: true }): LocalChange {
  return decision.restore ? { ...change, archived: false } : change;
}

/**
 * What the change sets that Notion changed after the change's base: the keys of its properties,
 * and `in_trash` when the page went into or out of the trash in a way that matters to it; [] when
 * nothing. null when only the times can tell and they say the page changed.
 *
 * Notion rounds last_edited_time down to the minute, so an edit made in the base's minute has the
 * base's time: times alone cannot tell it from none. Equal times must still count as unchanged, as
 * the version the user saw carries that time too: counting equality as a change would put every
 * change made within a minute of the page's last edit (and every change to a page not edited since)
 * in conflict. So while the row still holds the base version (the common case: changes are pushed
 * before each pull; or the answer of a push sent from it: versionSeen), values decide instead of
 * times: a property the change sets whose value in Notion differs from the row's, and is not
 * exactly the value the change sets, was changed in Notion, in whatever minute; an edit elsewhere (other
 * properties, the page's blocks) is no conflict, since pages.update changes only the properties it
 * names. Once the row holds another version (a pull stored a newer one while the change waited),
 * the base's values are gone and only the times are left: a later last_edited_time counts as a
 * change to the whole page, an equal one as none. Neither sees an edit in Notion made in the very
 * minute of the version the user saw and stored by a pull before their change was recorded: the
 * row then holds it under the base's time, as if the user had seen it.
 */
export function changedInNotion(change: LocalChange, page: NotionPage, stored: StoredPage): string[] | null {
  const notion = pageRow(page);
  const { base, alsoChanged } = versionSeen(change, stored);
  if (stored.lastEditedTime.getTime() !== base.getTime()) return notion.lastEditedTime > base ? null : [];
  // A value Notion holds already is no conflict, whoever wrote it (a push whose answer was lost,
  // the same edit made there): sending it again changes nothing.
  const changed = Object.keys(change.properties).filter((key) => {
    const value = propertyValue(notion.properties, key);
    return (alsoChanged.includes(key) || !sameJson(value, propertyValue(stored.properties, key))) && !holdsExactly(value, change.properties[key]);
  });
  // Trashed in Notion is Notion's say on the page even when the change does not touch the trash
  // state; taken out of the trash there matters only to a change that moves the page itself.
  const trashMoved = notion.archived !== stored.archived || alsoChanged.includes('in_trash');
  if (trashMoved && (change.archived !== null || notion.archived) && notion.archived !== change.archived) changed.push('in_trash');
  return changed;
}

/**
 * The version the change was made on, as the row can tell it, and what Notion changed since that
 * the row's copy does not show. A change based on the version the row's last push was sent from,
 * on a row still holding that push's answer, was made in a view showing the pushed change pending
 * over that version (the $seen contract, migration 0016): it counts as made on the answer, but for
 * what Notion changed between the two, which that view did not show.
 */
function versionSeen(change: LocalChange, stored: StoredPage): { base: Date; alsoChanged: readonly string[] } {
  const push = stored.lastPush;
  if (push && push.from.getTime() === change.base.getTime() && push.as.getTime() === stored.lastEditedTime.getTime()) {
    return { base: push.as, alsoChanged: push.notionChanged };
  }
  return { base: change.base, alsoChanged: [] };
}

/**
 * The record of a push sent from the row's copy `before`, answered with `answer`: what Notion
 * changed between the two apart from what the push set, by each property's name and id.
 */
export function pushRecord(pushed: LocalChange, before: StoredPage, answer: NotionPage): LastPush {
  const after = pageRow(answer);
  const pushedKeys = Object.keys(pushed.properties);
  const notionChanged = Object.entries(after.properties)
    .filter(([name, value]) => !propertyKeys(name, value).some((key) => pushedKeys.includes(key)) && !sameJson(value, before.properties[name]))
    .flatMap(([name, value]) => propertyKeys(name, value));
  if (pushed.archived === null && after.archived !== before.archived) notionChanged.push('in_trash');
  return { from: before.lastEditedTime, as: after.lastEditedTime, notionChanged: [...new Set(notionChanged)] };
}

/** The keys a request may name a property by: its name, its id as Notion gives it (URL-encoded) and decoded. */
function propertyKeys(name: string, value: unknown): string[] {
  const id = isObject(value) && typeof value.id === 'string' ? value.id : null;
  return id === null ? [name] : [name, id, decodedId(id)];
}

/** Notion URL-encodes property ids, not always as encodeURIComponent would: compared decoded. */
function decodedId(id: string): string {
  try {
    return decodeURIComponent(id);
  } catch {
    return id; // a lone '%': not encoded
  }
}

/** The pages.update request of the change. */
export function updateRequest(pageId: string, change: LocalChange): UpdatePageParameters {
  return {
    page_id: pageId,
    ...(Object.keys(change.properties).length > 0 ? { properties: change.properties as NonNullable<UpdatePageParameters['properties']> } : {}),
    // in_trash, not archived: API 2025-09-03 takes both, and 2026-03-11 only in_trash.
    ...(change.archived !== null ? { in_trash: change.archived } : {}),
  };
}

/** A row's pending columns. */
export interface PendingColumns {
  change: LocalChange | null;
  pushError: string | null;
  conflict: unknown;
}

export type PushOutcome =
  /** Sent: `record` of the push, null when Notion's answer did not show the page. */
  | { kind: 'pushed'; record: LastPush | null; conflict: ConflictRecord | null }
  | { kind: 'nothing-to-send' }
  | { kind: 'kept-notion'; conflict: ConflictRecord }
  | { kind: 'refused'; error: string };

/**
 * A row's pending columns once `handled` (the change as the push read it) had `outcome`. The
 * application may have written the change again meanwhile: only the change handled is cleared or
 * marked refused, and one written since stays pending, on its base (which the push's record then
 * tells from an edit in Notion: versionSeen).
 */
export function settledColumns(current: PendingColumns, handled: LocalChange, outcome: PushOutcome): PendingColumns {
  const conflict = 'conflict' in outcome && outcome.conflict !== null ? outcome.conflict : current.conflict;
  if (current.change !== null && sameChange(current.change, handled)) {
    return outcome.kind === 'refused' ? { ...current, pushError: outcome.error } : { change: null, pushError: null, conflict };
  }
  return { ...current, conflict };
}

export function sameChange(a: LocalChange, b: LocalChange): boolean {
  return sameJson(a.properties, b.properties) && a.archived === b.archived && a.base.getTime() === b.base.getTime() && a.since.getTime() === b.since.getTime();
}

/** A page's property by the key a request may use: its name, or its id (as Notion gives it, URL-encoded, or decoded). */
function propertyValue(properties: Record<string, unknown>, key: string): unknown {
  if (Object.hasOwn(properties, key)) return properties[key];
  return Object.entries(properties).find(([name, p]) => propertyKeys(name, p).includes(key))?.[1];
}

// What Notion fills into a value it returns whatever the request said: ids, the type, the plain
// text and link of rich text, an option's colour, an object's kind.
const NOTION_FILLED: ReadonlySet<string> = new Set(['id', 'type', 'plain_text', 'href', 'color', 'object']);

/**
 * Whether a value of a Notion response is exactly what a request value sets: every key the request
 * names has the value it gives, nested, lists match item by item, and what the request leaves out
 * is Notion's own (NOTION_FILLED) or blank (null, false, 'default', empty), as pages.update writes
 * what is left out. So a bold title does not hold the same text sent plain, nor a date range its
 * start sent alone. Unsure means no: the caller then takes the value for one changed in Notion.
 */
function holdsExactly(response: unknown, request: unknown): boolean {
  return holdsAsSent(withoutVolatile(response), withoutVolatile(request));
}

function holdsAsSent(response: unknown, request: unknown): boolean {
  if (Array.isArray(request)) return Array.isArray(response) && response.length === request.length && request.every((item, i) => holdsAsSent(response[i], item));
  if (isObject(request)) {
    return (
      isObject(response) &&
      Object.entries(request).every(([key, value]) => holdsAsSent(response[key], value)) &&
      Object.entries(response).every(([key, value]) => Object.hasOwn(request, key) || NOTION_FILLED.has(key) || blank(value))
    );
  }
  return response === request;
}

function blank(value: unknown): boolean {
  if (Array.isArray(value)) return value.length === 0;
  if (isObject(value)) return Object.values(value).every(blank);
  return value === null || value === false || value === 'default';
}

/** Equal JSON values, whatever the order of their keys (jsonb reorders them), volatile parts aside (withoutVolatile). */
export function sameJson(a: unknown, b: unknown): boolean {
  return equalJson(withoutVolatile(a), withoutVolatile(b));
}

function equalJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => equalJson(item, b[i]));
  if (isObject(a)) return isObject(b) && Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([key, value]) => Object.hasOwn(b, key) && equalJson(value, b[key]));
  return a === b;
}

/**
 * The value without what Notion changes on every read: a file it hosts comes with a signed,
 * temporary url (its query string) and that url's expiry_time, new in each response.
 */
export function withoutVolatile(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutVolatile);
  if (!isObject(value)) return value;
  const hosted = typeof value.url === 'string' && 'expiry_time' in value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !(hosted && key === 'expiry_time'))
      .map(([key, item]) => [key, hosted && key === 'url' ? (item as string).split('?')[0] : withoutVolatile(item)]),
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
