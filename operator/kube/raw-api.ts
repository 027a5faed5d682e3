// JSON requests and watch streams on client-node's own transport (its fetch, TLS dispatcher and
// authenticators), for what the generated clients do not expose: paged lists and watches with
// every query parameter, abort signals, and wire JSON without model deserialization.
//
// One connection pool for every request. client-node 2.0.1's applySecurityAuthentication makes a
// new undici Agent per request, so every call opens (and leaves behind) its own TLS connection:
// measured with 5,000 tasks, the operator spent its CPU in TLS handshakes and grew past 500 MiB
// RSS. Here the Agent is made once and reused; credentials (tokens, which expire and rotate) are
// still read for every request.
import type { RequestOptions as HttpsRequestOptions } from 'node:https';
import {
  ApiException,
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  RequestContext,
  type KubeConfig,
  type ResponseContext,
} from '@kubernetes/client-node';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

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

export interface RawApiOptions {
  /** Told of every request's outcome: the HTTP status, or 'error' when no answer came. */
  observe?: (method: string, code: number | 'error') => void;
}

export interface WatchEvent<T = unknown> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class RawApi {
  private readonly http = new IsomorphicFetchHttpLibrary();
  private readonly server: string;
  /** The shared connection pool (TLS settings of the kubeconfig as first read); undefined for plain HTTP. */
  private dispatcher: Promise<Dispatcher | undefined> | undefined;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: RawApiOptions = {},
  ) {
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
    await this.authenticate(ctx);
    let res: ResponseContext;
    try {
      res = await this.http.send(ctx).toPromise();
    } catch (err) {
      this.opts.observe?.(method, 'error');
      throw err;
    }
    this.opts.observe?.(method, res.httpStatusCode);
    return res;
  }

  /** Closes the pooled connections (open watches end with an error). */
  async close(): Promise<void> {
    const dispatcher = await this.dispatcher;
    this.dispatcher = undefined;
    await dispatcher?.close();
  }

  private async authenticate(ctx: RequestContext): Promise<void> {
    this.dispatcher ??= this.makeDispatcher().catch((err: unknown) => {
      this.dispatcher = undefined; // not cached: the next request tries again
      throw err;
    });
    const dispatcher = await this.dispatcher;
    const opts: HttpsRequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    for (const [name, value] of Object.entries(opts.headers ?? {})) {
      if (value !== undefined) ctx.setHeaderParam(name, String(value));
    }
    if (opts.auth) ctx.setHeaderParam('Authorization', `Basic ${Buffer.from(opts.auth).toString('base64')}`);
    if (dispatcher) ctx.setDispatcher(dispatcher);
  }

  // client-node builds the Agent (TLS material, proxy settings) inside applySecurityAuthentication:
  // let it, once, and keep what it made.
  private async makeDispatcher(): Promise<Dispatcher | undefined> {
    const probe = new RequestContext(this.server, HttpMethod.GET);
    await this.kc.applySecurityAuthentication(probe);
    return probe.getDispatcher();
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
