// iCalendar feeds served on loopback the way calendar providers serve them: each with an ETag
// and a Last-Modified, answering 304 to a matching If-None-Match; a feed can be made to fail.
import { createHash } from 'node:crypto';
import { startFakeHttp, type FakeHttp, type FakeResponse } from './fake-http.ts';

export interface FakeIcs extends FakeHttp {
  /** Serves `body` at /feeds/<name>.ics from now on (a new ETag when it changed). */
  publish(name: string, body: string): string;
  /** Answers /feeds/<name>.ics with this instead (e.g. a 500). */
  fail(name: string, response: FakeResponse): void;
  feedUrl(name: string): string;
}

export async function startFakeIcs(): Promise<FakeIcs> {
  const feeds = new Map<string, { body: string; etag: string; lastModified: string }>();
  const failures = new Map<string, FakeResponse>();
  const http = await startFakeHttp((req) => {
    const name = /^\/feeds\/([^/]+)\.ics$/.exec(req.path)?.[1];
    if (!name) return { status: 404, body: 'not found' };
    const failure = failures.get(name);
    if (failure) return failure;
    const feed = feeds.get(name);
    if (!feed) return { status: 404, body: 'not found' };
    if (req.headers['if-none-match'] === feed.etag) return { status: 304, headers: { etag: feed.etag } };
    return { status: 200, headers: { 'content-type': 'text/calendar; charset=utf-8', etag: feed.etag, 'last-modified': feed.lastModified }, body: feed.body };
  });
  return {
    ...http,
    publish(name, body) {
      const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
      feeds.set(name, { body, etag, lastModified: new Date().toUTCString() });
      failures.delete(name);
      return etag;
    },
    fail: (name, response) => failures.set(name, response),
    feedUrl: (name) => `${http.url}/feeds/${name}.ics`,
  };
}

/** A VCALENDAR around the given VEVENT blocks. */
export function calendar(...events: string[]): string {
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//bgtask tests//EN', ...events, 'END:VCALENDAR', ''].join('\r\n');
}

const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

/** A VEVENT with UTC times. */
export function vevent(uid: string, start: Date, end: Date, summary = uid): string {
  return ['BEGIN:VEVENT', `UID:${uid}`, `DTSTAMP:${stamp(new Date(0))}`, `DTSTART:${stamp(start)}`, `DTEND:${stamp(end)}`, `SUMMARY:${summary}`, 'END:VEVENT'].join('\r\n');
}
