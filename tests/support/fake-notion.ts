// The Notion API's search endpoint on loopback: pages in the shape of a recorded page object
// (fixtures/tasks/notion-page.json), sorted by last_edited_time, paginated with start_cursor /
// has_more / next_cursor; 429s with Retry-After can be scripted in front.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startFakeHttp, type FakeHttp, type FakeResponse } from './fake-http.ts';

const RECORDED = JSON.parse(readFileSync(resolve(import.meta.dirname, '../fixtures/tasks/notion-page.json'), 'utf8')) as Record<string, unknown>;

export interface FakePage {
  id: string;
  title: string;
  lastEdited: string;
  archived?: boolean;
}

export interface FakeNotion extends FakeHttp {
  pages: FakePage[];
  /** The bodies of the search requests received. */
  searches(): { start_cursor?: string; page_size?: number; sort?: unknown; filter?: unknown }[];
}

export function pageObject(page: FakePage): object {
  const body = structuredClone(RECORDED) as { properties: { Name: { title: { text: { content: string }; plain_text: string }[] } } } & Record<string, unknown>;
  body.id = page.id;
  body.last_edited_time = page.lastEdited;
  body.archived = page.archived ?? false;
  body.in_trash = page.archived ?? false;
  body.url = `https://www.notion.so/${page.title.replace(/\W+/g, '-')}-${page.id.replaceAll('-', '')}`;
  body.properties.Name.title[0]!.text.content = page.title;
  body.properties.Name.title[0]!.plain_text = page.title;
  return body;
}

export async function startFakeNotion(token: string): Promise<FakeNotion> {
  const pages: FakePage[] = [];
  const cursors = new Map<string, number>();
  const http = await startFakeHttp((req) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      return { status: 401, body: { object: 'error', status: 401, code: 'unauthorized', message: 'API token is invalid.' } };
    }
    if (req.method !== 'POST' || req.path !== '/v1/search') {
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
  return {
    ...http,
    pages,
    searches: () => http.requests.filter((r) => r.path === '/v1/search').map((r) => JSON.parse(r.body || '{}') as never),
  };
}

export const notionRateLimited = (retryAfterSeconds: number): FakeResponse => ({
  status: 429,
  headers: { 'retry-after': String(retryAfterSeconds) },
  body: { object: 'error', status: 429, code: 'rate_limited', message: 'You have been rate limited. Please try again in a few minutes.' },
});
