// The Notion API on loopback, with pages in the shape of a recorded page object
// (fixtures/tasks/notion-page.json): search, sorted by last_edited_time, paginated with start_cursor /
// has_more / next_cursor; retrieve a page; update one as Notion does (only the properties named
// change, a title is replaced whole, in_trash / archived, last_edited_time moves to the current
// minute, a trashed page's properties are not edited; a file Notion hosts has a url signed anew
// on each read); errors as Notion words them (object_not_found,
// validation_error). 429s with Retry-After can be scripted in front.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startFakeHttp, type FakeHttp, type FakeResponse } from './fake-http.ts';

const RECORDED = JSON.parse(readFileSync(resolve(import.meta.dirname, '../fixtures/tasks/notion-page.json'), 'utf8')) as Record<string, unknown>;

type PropertyValue = Record<string, unknown> & { id: string; type: string };

export interface FakePage {
  id: string;
  /** The title's text. Once the title is written through the API (or edit()), properties.Name holds it, rich text and all, and wins. */
  title: string;
  lastEdited: string;
  archived?: boolean;
  /** Property values as Notion returns them, by name, in place of the recorded page's. */
  properties?: Record<string, PropertyValue>;
}

export interface FakeNotion extends FakeHttp {
  pages: FakePage[];
  /** The bodies of the search requests received. */
  searches(): { start_cursor?: string; page_size?: number; sort?: unknown; filter?: unknown }[];
  /** The update requests received: the page id in the path and the body. */
  updates(): { page: string; body: { properties?: Record<string, unknown>; in_trash?: boolean; archived?: boolean } }[];
  /** The page ids of the retrieve requests received. */
  retrievals(): string[];
  /**
   * An edit made in Notion by someone else: an update applied as the API applies it (it throws
   * what the API would answer with), last edited at `lastEdited` (default: the current minute).
   */
  edit(id: string, update: { properties?: Record<string, unknown>; in_trash?: boolean }, lastEdited?: string): void;
}

export function pageObject(page: FakePage): object {
  const body = structuredClone(RECORDED) as { properties: Record<string, PropertyValue> & { Name: { title: { text: { content: string }; plain_text: string }[] } } } & Record<string, unknown>;
  body.id = page.id;
  body.last_edited_time = page.lastEdited;
  body.archived = page.archived ?? false;
  body.in_trash = page.archived ?? false;
  body.url = `https://www.notion.so/${page.title.replace(/\W+/g, '-')}-${page.id.replaceAll('-', '')}`;
  body.properties.Name.title[0]!.text.content = page.title;
  body.properties.Name.title[0]!.plain_text = page.title;
  Object.assign(body.properties, structuredClone(page.properties ?? {}));
  for (const property of Object.values(body.properties as Record<string, PropertyValue>)) {
    if (property.type === 'files') property.files = (property.files as FileItem[]).map(signed);
  }
  return body;
}

type FileItem = { name: string; type: 'file' | 'external'; file?: { url: string; expiry_time: string }; external?: { url: string } };

/** A file Notion hosts, as each response gives it: a url signed anew, valid for an hour. */
function signed(item: FileItem): FileItem {
  if (item.type !== 'file' || !item.file) return item;
  const url = `${item.file.url.split('?')[0]}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=${randomUUID().replaceAll('-', '')}`;
  return { ...item, file: { url, expiry_time: new Date(Date.now() + 3_600_000).toISOString() } };
}

const error = (status: number, code: string, message: string): FakeResponse => ({ status, body: { object: 'error', status, code, message, request_id: randomUUID() } });
const notFound = (id: string) => error(404, 'object_not_found', `Could not find page with ID: ${id}. Make sure the relevant pages and databases are shared with your integration.`);
const invalid = (message: string) => error(400, 'validation_error', message);

/** An update Notion refuses: its error response. */
class Refused extends Error {
  constructor(readonly response: FakeResponse) {
    super(JSON.stringify(response.body));
  }
}

/** The minute Notion stamps an edit with: it rounds last_edited_time down to the minute. */
export function currentMinute(): string {
  return new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();
}

const DEFAULT_ANNOTATIONS = { bold: false, italic: false, strikethrough: false, underline: false, code: false, color: 'default' };

/** Rich text as sent (text items; the fake renders no mentions or equations) as Notion returns it. */
function richText(name: string, items: unknown): object[] {
  if (!Array.isArray(items)) throw new Refused(invalid(`body failed validation: body.properties.${name} should be an array.`));
  return items.map((item: { text?: { content?: unknown; link?: { url: string } | null }; annotations?: object }) => {
    if (typeof item?.text?.content !== 'string') throw new Refused(invalid(`body failed validation: body.properties.${name}.text.content should be defined.`));
    const link = item.text.link ?? null;
    return { type: 'text', text: { content: item.text.content, link }, annotations: { ...DEFAULT_ANNOTATIONS, ...item.annotations }, plain_text: item.text.content, href: link?.url ?? null };
  });
}

/** The page's property `key` names (by name or id), with `value` (as sent) applied: what Notion would store. */
function updatedProperty(current: Record<string, PropertyValue>, key: string, value: unknown): [string, PropertyValue] {
  const entry = Object.entries(current).find(([name, p]) => name === key || p.id === key || decodeURIComponent(p.id) === key);
  if (!entry) throw new Refused(invalid(`${key} is not a property that exists.`));
  const [name, property] = entry;
  const sent = (value ?? {}) as Record<string, unknown>;
  if (!(property.type in sent)) throw new Refused(invalid(`${name} is expected to be ${property.type}.`));
  const given = sent[property.type];
  switch (property.type) {
    case 'title':
      return [name, { id: property.id, type: 'title', title: richText(name, given) }];
    case 'number':
      if (given !== null && typeof given !== 'number') throw new Refused(invalid(`${name} is expected to be number.`));
      return [name, { id: property.id, type: 'number', number: given }];
    case 'multi_select': {
      if (!Array.isArray(given)) throw new Refused(invalid(`${name} is expected to be multi_select.`));
      const known = property.multi_select as { id: string; name: string; color: string }[];
      const options = given.map((o: { id?: string; name?: string }) => known.find((k) => k.id === o.id || k.name === o.name) ?? { id: randomUUID().slice(0, 4), name: String(o.name), color: 'default' });
      return [name, { id: property.id, type: 'multi_select', multi_select: options }];
    }
    case 'files': {
      // External files only: a file Notion hosts is uploaded through the file upload API.
      const external = (f: { name?: unknown; type?: unknown; external?: { url?: unknown } }) => typeof f?.name === 'string' && f.type === 'external' && typeof f.external?.url === 'string';
      if (!Array.isArray(given) || !given.every(external)) throw new Refused(invalid(`${name} is expected to be files.`));
      return [name, { id: property.id, type: 'files', files: given.map((f: FileItem) => ({ name: f.name, type: 'external', external: { url: f.external!.url } })) }];
    }
    default:
      throw new Refused(invalid(`${name} is expected to be ${property.type}.`));
  }
}

/** Applies an update to the page as Notion does, or throws its refusal; nothing changes on a refusal. */
function applyUpdate(page: FakePage, update: { properties?: unknown; in_trash?: unknown; archived?: unknown }, lastEdited: string): void {
  const trash = update.in_trash ?? update.archived;
  if (trash !== undefined && typeof trash !== 'boolean') throw new Refused(invalid('body failed validation: body.in_trash should be a boolean.'));
  const properties = update.properties ?? {};
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) throw new Refused(invalid('body failed validation: body.properties should be an object.'));
  const entries = Object.entries(properties);
  if (entries.length > 0 && page.archived && trash !== false) throw new Refused(invalid("Can't edit block that is archived. You must unarchive the block before editing."));
  const current = (pageObject(page) as { properties: Record<string, PropertyValue> }).properties;
  const changed = entries.map(([key, value]) => updatedProperty(current, key, value));
  for (const [name, value] of changed) {
    page.properties = { ...page.properties, [name]: value };
    if (value.type === 'title') page.title = (value.title as { plain_text: string }[]).map((t) => t.plain_text).join('');
  }
  if (trash !== undefined) page.archived = trash;
  page.lastEdited = lastEdited;
}

export async function startFakeNotion(token: string): Promise<FakeNotion> {
  const pages: FakePage[] = [];
  const cursors = new Map<string, number>();
  // Notion takes a page id with or without its dashes.
  const find = (id: string) => pages.find((p) => p.id.replaceAll('-', '') === id.replaceAll('-', '').toLowerCase());
  const http = await startFakeHttp((req) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      return { status: 401, body: { object: 'error', status: 401, code: 'unauthorized', message: 'API token is invalid.' } };
    }
    const path = new URL(req.path, 'http://notion').pathname;
    const pageId = /^\/v1\/pages\/([^/]+)$/.exec(path)?.[1];
    if (pageId !== undefined && (req.method === 'GET' || req.method === 'PATCH')) {
      const page = find(decodeURIComponent(pageId));
      if (!page) return notFound(decodeURIComponent(pageId));
      if (req.method === 'PATCH') {
        try {
          applyUpdate(page, JSON.parse(req.body || '{}') as object, currentMinute());
        } catch (err) {
          if (err instanceof Refused) return err.response;
          throw err;
        }
      }
      return { status: 200, body: pageObject(page) };
    }
    if (req.method !== 'POST' || path !== '/v1/search') {
      return { status: 400, body: { object: 'error', status: 400, code: 'invalid_request_url', message: 'Invalid request URL.' } };
    }
    const body = JSON.parse(req.body || '{}') as { start_cursor?: string; page_size?: number };
    const size = body.page_size ?? 100;
    const start = body.start_cursor === undefined ? 0 : cursors.get(body.start_cursor);
    if (start === undefined) return { status: 400, body: { object: 'error', status: 400, code: 'validation_error', message: 'start_cursor is invalid.' } };
    const sorted = [...pages].sort((a, b) => b.lastEdited.localeCompare(a.lastEdited));
    const slice = sorted.slice(start, start + size);
    const hasMore = start + size < sorted.length;
    let next: string | null = null;
    if (hasMore) {
      next = randomUUID();
      cursors.set(next, start + size);
    }
    const response: FakeResponse = {
      status: 200,
      body: { object: 'list', results: slice.map(pageObject), next_cursor: next, has_more: hasMore, type: 'page_or_data_source', page_or_data_source: {}, request_id: randomUUID() },
    };
    return response;
  });
  const pageRequests = (method: string) => http.requests.filter((r) => r.method === method && r.path.startsWith('/v1/pages/'));
  const idOf = (path: string) => decodeURIComponent(new URL(path, 'http://notion').pathname.slice('/v1/pages/'.length));
  return {
    ...http,
    pages,
    searches: () => http.requests.filter((r) => r.path === '/v1/search').map((r) => JSON.parse(r.body || '{}') as never),
    updates: () => pageRequests('PATCH').map((r) => ({ page: idOf(r.path), body: JSON.parse(r.body || '{}') as never })),
    retrievals: () => pageRequests('GET').map((r) => idOf(r.path)),
    edit(id, update, lastEdited = currentMinute()) {
      const page = find(id);
      if (!page) throw new Error(`no page ${id}`);
      applyUpdate(page, update, lastEdited);
    },
  };
}

export const notionRateLimited = (retryAfterSeconds: number): FakeResponse => ({
  status: 429,
  headers: { 'retry-after': String(retryAfterSeconds) },
  body: { object: 'error', status: 429, code: 'rate_limited', message: 'You have been rate limited. Please try again in a few minutes.' },
});
