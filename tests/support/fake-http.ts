// A loopback HTTP server for the third-party APIs the tasks call (LLM, Notion, ICS feeds): it
// records every request and answers from a script of responses, then from a default handler.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** performance.now() when the request arrived. */
  at: number;
}

export interface FakeResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | object;
  /** Answer after this long. */
  delayMs?: number;
  /** Drop the connection instead of answering. */
  destroy?: boolean;
}

export type Handler = (req: RecordedRequest) => FakeResponse;

export interface FakeHttp {
  url: string;
  requests: RecordedRequest[];
  /** Answers the next requests (matching `path`, when given) with these, in order, before the handler. */
  script(responses: FakeResponse[], path?: string): void;
  setHandler(handler: Handler): void;
  close(): Promise<void>;
}

export async function startFakeHttp(handler: Handler): Promise<FakeHttp> {
  const requests: RecordedRequest[] = [];
  const scripted: { path: string | undefined; response: FakeResponse }[] = [];
  let current = handler;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: performance.now(),
      };
      requests.push(recorded);
      const index = scripted.findIndex((s) => s.path === undefined || recorded.path.startsWith(s.path));
      const response = index >= 0 ? scripted.splice(index, 1)[0]!.response : current(recorded);
      const send = () => answer(res, response);
      if (response.delayMs) setTimeout(send, response.delayMs);
      else send();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script: (responses, path) => scripted.push(...responses.map((response) => ({ path, response }))),
    setHandler: (h) => (current = h),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function answer(res: ServerResponse, response: FakeResponse): void {
  if (response.destroy) {
    res.socket?.destroy();
    return;
  }
  const isJson = typeof response.body === 'object';
  const body = response.body === undefined ? '' : isJson ? JSON.stringify(response.body) : (response.body as string);
  res.writeHead(response.status, { ...(isJson ? { 'content-type': 'application/json' } : {}), ...response.headers });
  res.end(body);
}
