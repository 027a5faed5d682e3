// conditionalGet against a loopback HTTP server: a body over the limit is refused whether it
// declares its length, streams without one (chunked), or is small only compressed; and a feed
// never reaches a link-local address (instance metadata), named in the URL or redirected to.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RefusedAddressError, guardedLookup, isRefusedAddress } from '../../task-runner/services/feed-dispatcher.ts';
import { conditionalGet } from '../../task-runner/services/http-fetch.ts';

const LIMIT = 64 * 1024;
let server: Server;
let base: string;
/** Bytes the chunked answer had written when its client went away. */
let chunkedWritten = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/declared') {
      res.writeHead(200, { 'content-length': String(LIMIT + 1) }).end('x'.repeat(LIMIT + 1));
    } else if (req.url === '/chunked') {
      // Endless: only the client's limit ends it.
      chunkedWritten = 0;
      const block = 'y'.repeat(16 * 1024);
      const write = () => {
        while (!res.destroyed && res.write(block)) chunkedWritten += block.length;
        if (!res.destroyed) res.once('drain', write);
      };
      res.writeHead(200);
      write();
    } else if (req.url?.startsWith('/redirect-to/')) {
      res.writeHead(302, { location: decodeURIComponent(req.url.slice('/redirect-to/'.length)) }).end();
    } else if (req.url === '/gzip') {
      const packed = gzipSync('z'.repeat(LIMIT * 16));
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(packed.length) }).end(packed);
    } else {
      res.writeHead(200, { etag: '"v1"' }).end('é'.repeat(LIMIT / 2)); // two bytes each: exactly the limit
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => {
  server.close(() => resolve());
  server.closeAllConnections(); // the client keeps its connections alive
}));

const get = (path: string) => conditionalGet(`${base}${path}`, { etag: null, lastModified: null, timeoutMs: 10_000, maxBytes: LIMIT, signal: new AbortController().signal });

describe('conditionalGet size limit', () => {
  it('returns a body of exactly the limit, multi-byte characters intact', async () => {
    await expect(get('/fits')).resolves.toEqual({ modified: true, body: 'é'.repeat(LIMIT / 2), etag: '"v1"', lastModified: null });
  });

  it('refuses a declared length over the limit without reading it', async () => {
    await expect(get('/declared')).rejects.toThrow(`the body of ${LIMIT + 1} bytes exceeds the limit of ${LIMIT}`);
  });

  it('refuses a chunked body once it passes the limit, and stops the download', async () => {
    await expect(get('/chunked')).rejects.toThrow(`the body exceeds the limit of ${LIMIT} bytes`);
    expect(chunkedWritten).toBeLessThan(LIMIT * 64);
  });

  it('counts a compressed body as decoded: a small gzip of a large text is refused', async () => {
    await expect(get('/gzip')).rejects.toThrow(`the body exceeds the limit of ${LIMIT} bytes`);
  });
});

describe('conditionalGet and link-local addresses (instance metadata)', () => {
  const getUrl = (url: string) => conditionalGet(url, { etag: null, lastModified: null, timeoutMs: 10_000, maxBytes: LIMIT, signal: new AbortController().signal });
  const refusal = async (promise: Promise<unknown>) => {
    const err = await promise.then(() => undefined, (e: unknown) => e);
    for (let e = err; e instanceof Error; e = e.cause) if (e instanceof RefusedAddressError) return e;
    return undefined;
  };

  it.each(['http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/latest/', 'http://[::ffff:169.254.169.254]/', 'http://[fe80::1]:8080/feed.ics'])('refuses %s before connecting', async (url) => {
    const started = Date.now();
    expect((await refusal(getUrl(url)))?.message).toMatch(/is a link-local address, where instance metadata is served: refused/);
    expect(Date.now() - started).toBeLessThan(5_000); // refused, not timed out
  });

  it('refuses a redirect to one, and still follows a redirect elsewhere', async () => {
    const to = (target: string) => `${base}/redirect-to/${encodeURIComponent(target)}`;
    expect((await refusal(getUrl(to('http://169.254.169.254/latest/meta-data/iam/'))))?.message).toContain('169.254.169.254 is a link-local address');
    await expect(getUrl(to(`${base}/fits`))).resolves.toMatchObject({ modified: true, etag: '"v1"' });
  });

  it('leaves out refused addresses a name resolves to, and fails when no other is left', async () => {
    const resolver = (addresses: { address: string; family: number }[]) => (_h: string, _o: unknown, cb: (e: null, a: { address: string; family: number }[]) => void) => cb(null, addresses);
    const lookup = (addresses: { address: string; family: number }[], all: boolean) =>
      new Promise<unknown>((resolve, reject) => guardedLookup(resolver(addresses))('feeds.example', { all }, (err, address) => (err ? reject(err) : resolve(address))));
    await expect(lookup([{ address: '169.254.169.254', family: 4 }], true)).rejects.toThrow('feeds.example (169.254.169.254) is a link-local address');
    await expect(lookup([{ address: '169.254.169.254', family: 4 }, { address: '10.0.0.7', family: 4 }], true)).resolves.toEqual([{ address: '10.0.0.7', family: 4 }]);
    await expect(lookup([{ address: 'fe80::1', family: 6 }, { address: '203.0.113.9', family: 4 }], false)).resolves.toBe('203.0.113.9');
  });

  it('tells refused addresses from private ones, which a feed inside the cluster may use', () => {
    for (const a of ['169.254.169.254', '169.254.0.1', 'fe80::1', 'fd00:ec2::254', '::ffff:169.254.169.254']) expect(isRefusedAddress(a), a).toBe(true);
    for (const a of ['10.96.0.1', '192.168.1.2', '172.16.0.1', '127.0.0.1', '::1', 'fd00::1', '203.0.113.9', 'feeds.example']) expect(isRefusedAddress(a), a).toBe(false);
  });
});
