/**
 * A minimal Kubernetes API client on node:https. The runner reports one status patch per
 * run; @kubernetes/client-node would cost more start-up time than the whole run is allowed.
 * Credentials come from the pod's service account, or from BGTASK_KUBE_* for runs outside
 * the cluster (tests, benchmarks).
 */
import { existsSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeSettings {
  BGTASK_KUBE_API?: string | undefined;
  BGTASK_KUBE_TOKEN_FILE?: string | undefined;
  BGTASK_KUBE_CA_FILE?: string | undefined;
  KUBERNETES_SERVICE_HOST?: string | undefined;
  KUBERNETES_SERVICE_PORT?: number | undefined;
}

/** Where the API is and how to authenticate; files are read on each request (tokens rotate). */
export interface KubeEndpoint {
  server: URL;
  tokenFile: string;
  caFile: string | undefined;
  namespaceFile: string;
}

/** The API to talk to, or undefined outside a cluster with no override: then nothing is contacted. */
export function kubeEndpoint(settings: KubeSettings, serviceAccountDir = SERVICE_ACCOUNT_DIR): KubeEndpoint | undefined {
  const tokenFile = settings.BGTASK_KUBE_TOKEN_FILE ?? `${serviceAccountDir}/token`;
  const defaultCa = `${serviceAccountDir}/ca.crt`;
  const caFile = settings.BGTASK_KUBE_CA_FILE ?? (existsSync(defaultCa) ? defaultCa : undefined);
  const namespaceFile = `${serviceAccountDir}/namespace`;
  if (settings.BGTASK_KUBE_API) return { server: new URL(settings.BGTASK_KUBE_API), tokenFile, caFile, namespaceFile };
  if (settings.KUBERNETES_SERVICE_HOST && existsSync(tokenFile)) {
    const host = settings.KUBERNETES_SERVICE_HOST.includes(':') ? `[${settings.KUBERNETES_SERVICE_HOST}]` : settings.KUBERNETES_SERVICE_HOST;
    return { server: new URL(`https://${host}:${settings.KUBERNETES_SERVICE_PORT ?? 443}`), tokenFile, caFile, namespaceFile };
  }
  return undefined;
}

/** The pod's own namespace from its service account, if mounted. */
export function serviceAccountNamespace(endpoint: KubeEndpoint): string | undefined {
  return existsSync(endpoint.namespaceFile) ? readFileSync(endpoint.namespaceFile, 'utf8').trim() : undefined;
}

export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    message: string,
    readonly status: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
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
