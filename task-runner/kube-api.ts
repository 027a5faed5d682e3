/**
 * A minimal Kubernetes API client on node:https. The runner reports one status patch per
 * run; @kubernetes/client-node would cost more start-up time than the whole run is allowed.
 * Loaded only when there is an API to talk to (see kube-endpoint.ts): node:https alone costs
 * a noticeable share of the start-up budget.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { KubeEndpoint } from './kube-endpoint.ts';

export class KubeApiError extends Error {
  override name = 'KubeApiError';
  /** The HTTP status, or undefined when no answer came. */
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
  /** Worth another try: no answer, throttled, or a server-side error. */
  get transient(): boolean {
    return this.status === undefined || this.status === 429 || this.status >= 500;
  }
}

export interface KubeClient {
  request(method: 'GET' | 'PATCH', path: string, body?: { contentType: string; value: unknown }): Promise<unknown>;
  close(): void;
}

export function kubeClient(endpoint: KubeEndpoint, options: { timeoutMs: number }): KubeClient {
  let token: string;
  let ca: Buffer | undefined;
  try {
    token = readFileSync(endpoint.tokenFile, 'utf8').trim();
    ca = endpoint.caFile ? readFileSync(endpoint.caFile) : undefined;
  } catch (err) {
    throw new KubeApiError(`cannot read the Kubernetes credentials (${endpoint.tokenFile}, ${endpoint.caFile ?? 'system CAs'})`, undefined, { cause: err });
  }
  // Keep-alive: a report is a GET then a PATCH, and one TLS handshake is enough for both.
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ...(ca ? { ca } : {}) });
  const base = endpoint.server.href.replace(/\/$/, '');
  return {
    request(method, path, body) {
      const url = new URL(base + path);
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body.value));
      return new Promise((resolve, reject) => {
        const req = request(
          url,
          {
            method,
            agent,
            timeout: options.timeoutMs,
            headers: {
              accept: 'application/json',
              authorization: `Bearer ${token}`,
              ...(payload && body ? { 'content-type': body.contentType, 'content-length': payload.length } : {}),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('error', (err) => reject(new KubeApiError(`${method} ${url.pathname}: response failed`, undefined, { cause: err })));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let parsed: unknown = text;
              try {
                parsed = text ? JSON.parse(text) : undefined;
              } catch {
                // Not JSON (a proxy's HTML error page, say): keep the text for the message below.
              }
              const status = res.statusCode ?? 0;
              if (status >= 200 && status < 300) return resolve(parsed);
              const reason = (parsed as { message?: string } | undefined)?.message ?? String(text).slice(0, 200);
              reject(new KubeApiError(`${method} ${url.pathname}: HTTP ${status}: ${reason}`, status));
            });
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
        req.on('error', (err) => reject(new KubeApiError(`${method} ${url.pathname} to ${url.host} failed`, undefined, { cause: err })));
        req.end(payload);
      });
    },
    close: () => agent.destroy(),
  };
}
