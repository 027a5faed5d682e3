// The operator's HTTP endpoints: /healthz (liveness: the process answers and no informer has
// been cut off from the server for long — its own recovery is failing), /readyz (readiness: every
// cache has synced; a non-leader replica is ready too, it is a hot standby), /metrics.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface Check {
  name: string;
  /** undefined when fine; otherwise why not. */
  check: () => string | undefined;
}

export interface EndpointOptions {
  host?: string;
  port: number;
  liveness?: Check[];
  readiness?: Check[];
  /** Serve /metrics from this registry. */
  registry?: Registry;
}

export interface RunningServer {
  server: Server;
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

function runChecks(checks: Check[]): { ok: boolean; body: string } {
  const failures = checks.flatMap((c) => {
    const problem = c.check();
    return problem === undefined ? [] : [`${c.name}: ${problem}`];
  });
  return failures.length === 0 ? { ok: true, body: 'ok\n' } : { ok: false, body: `${failures.join('\n')}\n` };
}

export async function startEndpoints(opts: EndpointOptions): Promise<RunningServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    if (path === '/healthz' && opts.liveness) {
      const r = runChecks(opts.liveness);
      return reply(r.ok ? 200 : 500, r.body);
    }
    if (path === '/readyz' && opts.readiness) {
      const r = runChecks(opts.readiness);
      return reply(r.ok ? 200 : 503, r.body);
    }
    if (path === '/metrics' && opts.registry) {
      const registry = opts.registry;
      registry.metrics().then(
        (text) => reply(200, text, registry.contentType),
        (err: unknown) => reply(500, `collecting metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
      );
      return;
    }
    reply(404, 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
