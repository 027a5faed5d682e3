// JSON requests and watch streams on client-node's own transport (its fetch, TLS dispatcher and
// authenticators), for what the generated clients do not expose: paged lists and watches with
// every query parameter, abort signals, and wire JSON without model deserialization.
import {
  ApiException,
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  RequestContext,
  type KubeConfig,
  type ResponseContext,
} from '@kubernetes/client-node';

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Content-Type of the body; application/json when unset. */
  contentType?: string;
  signal?: AbortSignal;
  /** Aborts the request after this long; default 30 s (not applied to watches). */
  timeoutMs?: number;
}

export interface WatchEvent<T = unknown> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class RawApi {
  private readonly http = new IsomorphicFetchHttpLibrary();
  private readonly server: string;

  constructor(private readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
  }

  /** Sends one request and returns the parsed JSON answer; throws ApiException for non-2xx answers. */
  async request<T>(method: HttpMethod, path: string, opts: RequestOptions = {}): Promise<T> {
    const signals = [AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS)];
    if (opts.signal) signals.push(opts.signal);
    const res = await this.send(method, path, opts, AbortSignal.any(signals));
    const text = await res.body.text();
    if (res.httpStatusCode < 200 || res.httpStatusCode > 299) throw apiError(method, path, res.httpStatusCode, text, res.headers);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * Opens a watch and calls onEvent for each event until the server ends the stream (resolves) or
   * the request fails or is aborted (rejects). A non-200 answer rejects with its ApiException.
   */
  async watch<T>(path: string, query: Query, onEvent: (event: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    const res = await this.send(HttpMethod.GET, path, { query: { ...query, watch: true } }, signal);
    if (res.httpStatusCode !== 200) throw apiError('GET', path, res.httpStatusCode, await res.body.text(), res.headers);
    const stream = res.body.stream();
    if (!stream) throw new Error(`watch ${path}: the response has no body`);
    const decoder = new TextDecoder();
    let pending = '';
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line) onEvent(parseEvent<T>(path, line));
      }
    }
    const rest = (pending + decoder.decode()).trim();
    if (rest) onEvent(parseEvent<T>(path, rest));
  }

  private async send(method: HttpMethod, path: string, opts: RequestOptions, signal: AbortSignal): Promise<ResponseContext> {
    const ctx = new RequestContext(this.server + path, method);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) ctx.setQueryParam(k, String(v));
    ctx.setHeaderParam('Accept', 'application/json');
    if (opts.body !== undefined) {
      ctx.setHeaderParam('Content-Type', opts.contentType ?? 'application/json');
      ctx.setBody(JSON.stringify(opts.body));
    }
    ctx.setSignal(signal);
    await this.kc.applySecurityAuthentication(ctx);
    return this.http.send(ctx).toPromise();
  }
}

function parseEvent<T>(path: string, line: string): WatchEvent<T> {
  try {
    return JSON.parse(line) as WatchEvent<T>;
  } catch (err) {
    throw new Error(`watch ${path}: malformed event line ${JSON.stringify(line.slice(0, 200))}`, { cause: err });
  }
}

function apiError(method: string, path: string, code: number, text: string, headers: Record<string, string>): ApiException<unknown> {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (a proxy's HTML page, say): keep the text as the body
  }
  const message = typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string'
    ? (body as { message: string }).message
    : text.slice(0, 300);
  return new ApiException(code, `${method} ${path} failed with HTTP ${code}: ${message}`, body, headers);
}
