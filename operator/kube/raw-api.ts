// JSON requests and watch streams on client-node's TLS dispatcher and authenticators, for what the
// generated clients do not expose: paged lists and watches with every query parameter, abort
// signals, and wire JSON without model deserialization.
//
// One connection pool for every request. client-node 2.0.1's applySecurityAuthentication makes a
// new undici Agent per request, so every call opens (and leaves behind) its own TLS connection:
// measured with 5,000 tasks, the operator spent its CPU in TLS handshakes and grew past 500 MiB
// RSS. Here the Agent is made once and reused; credentials (tokens, which expire and rotate) are
// still read for every request.
//
// Requests go through undici's Dispatcher.request, not fetch (client-node's transport): fetch's
// WHATWG streams and Request/Response objects were a quarter of the operator's CPU per task,
// measured by profile while 1,000 tasks were created.
import type { RequestOptions as HttpsRequestOptions } from 'node:https';
import { ApiException, HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { getGlobalDispatcher, type Dispatcher } from 'undici';

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
  /** Paths still written once writes are fenced (fenceWrites); by default none. */
  unfenced?: (path: string) => boolean;
}

export interface WatchEvent<T = unknown> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** A write refused because writes were fenced (leadership lost, or a shutdown that ran out of time). */
export class WritesFencedError extends Error {
  override readonly name = 'WritesFencedError';
}

export class RawApi {
  private readonly origin: string;
  /** Path prefix of the server URL (a proxy may serve the API under one), without trailing slash. */
  private readonly basePath: string;
  /** The shared connection pool (TLS settings of the kubeconfig as first read); undefined for plain HTTP. */
  private dispatcher: Promise<Dispatcher | undefined> | undefined;
  /** Aborted by fenceWrites: the fenced writes in flight end, and new ones are refused. */
  private readonly writes = new AbortController();

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: RawApiOptions = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(cluster.server);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
  }

  /**
   * From now on refuses every write but those to `unfenced` paths, and aborts those in flight.
   * After the lease is lost (or a shutdown's drain ran out of time and the lease is about to be
   * handed over) another operator may be leading: a reconcile still running here must not send
   * writes after that (one the apiserver already took is not undone). The lease itself and Events
   * stay writable.
   */
  fenceWrites(reason: Error): void {
    if (this.writes.signal.aborted) return;
    this.writes.abort(new WritesFencedError(`writes stopped: ${reason.message}`, { cause: reason }));
  }

  /** Sends one request and returns the parsed JSON answer; throws ApiException for non-2xx answers. */
  async request<T>(method: HttpMethod, path: string, opts: RequestOptions = {}): Promise<T> {
    const signals = [AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS)];
    if (opts.signal) signals.push(opts.signal);
    if (method !== HttpMethod.GET && !this.opts.unfenced?.(path)) {
      if (this.writes.signal.aborted) throw this.writes.signal.reason as Error;
      signals.push(this.writes.signal);
    }
    const res = await this.send(method, path, opts, AbortSignal.any(signals));
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode > 299) throw apiError(method, path, res.statusCode, text, res.headers);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * Opens a watch and calls onEvent for each event until the server ends the stream (resolves) or
   * the request fails or is aborted (rejects). A non-200 answer rejects with its ApiException.
   */
  async watch<T>(path: string, query: Query, onEvent: (event: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    const res = await this.send(HttpMethod.GET, path, { query: { ...query, watch: true } }, signal);
    if (res.statusCode !== 200) throw apiError('GET', path, res.statusCode, await res.body.text(), res.headers);
    res.body.setEncoding('utf8'); // multi-byte characters split across chunks are joined
    let pending = '';
    for await (const chunk of res.body as AsyncIterable<string>) {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line) onEvent(parseEvent<T>(path, line));
      }
    }
    const rest = pending.trim();
    if (rest) onEvent(parseEvent<T>(path, rest));
  }

  private async send(method: HttpMethod, path: string, opts: RequestOptions, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) search.set(k, String(v));
    const query = search.size > 0 ? `?${search}` : '';
    const headers: Record<string, string> = { Accept: 'application/json', ...(await this.credentials()) };
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      body = JSON.stringify(opts.body);
    }
    const dispatcher = (await this.pool()) ?? getGlobalDispatcher();
    let res: Dispatcher.ResponseData;
    try {
      res = await dispatcher.request({ origin: this.origin, path: this.basePath + path + query, method, headers, body, signal });
    } catch (err) {
      this.opts.observe?.(method, 'error');
      throw err;
    }
    this.opts.observe?.(method, res.statusCode);
    return res;
  }

  /** Closes the pooled connections (open watches end with an error). */
  async close(): Promise<void> {
    const dispatcher = await this.dispatcher;
    this.dispatcher = undefined;
    await dispatcher?.close();
  }

  private pool(): Promise<Dispatcher | undefined> {
    this.dispatcher ??= this.makeDispatcher().catch((err: unknown) => {
      this.dispatcher = undefined; // not cached: the next request tries again
      throw err;
    });
    return this.dispatcher;
  }

  /** The request headers of the kubeconfig's user: a token (read afresh, it rotates), or basic auth. */
  private async credentials(): Promise<Record<string, string>> {
    const opts: HttpsRequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(opts.headers ?? {})) {
      if (value !== undefined) headers[name] = String(value);
    }
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    return headers;
  }

  // client-node builds the Agent (TLS material, proxy settings) inside applySecurityAuthentication:
  // let it, once, and keep what it made.
  private async makeDispatcher(): Promise<Dispatcher | undefined> {
    const probe = new RequestContext(this.origin + this.basePath, HttpMethod.GET);
    await this.kc.applySecurityAuthentication(probe);
    return probe.getDispatcher() as Dispatcher | undefined;
  }
}

function parseEvent<T>(path: string, line: string): WatchEvent<T> {
  try {
    return JSON.parse(line) as WatchEvent<T>;
  } catch (err) {
    throw new Error(`watch ${path}: malformed event line ${JSON.stringify(line.slice(0, 200))}`, { cause: err });
  }
}

function apiError(method: string, path: string, code: number, text: string, rawHeaders: Dispatcher.ResponseData['headers']): ApiException<unknown> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(rawHeaders)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
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
