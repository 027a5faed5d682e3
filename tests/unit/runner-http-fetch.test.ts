// conditionalGet's size limit against a loopback HTTP server: a body over the limit is refused
// whether it declares its length, streams without one (chunked), or is small only compressed.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
