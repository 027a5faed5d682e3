/**
 * A conditional GET (RFC 9110): the validators of the last answer go out as If-None-Match and
 * If-Modified-Since, and a 304 means the resource is unchanged. URLs may carry secrets (private
 * calendar feeds do), so errors name the host only.
 */
export type ConditionalResult =
  | { modified: false }
  | { modified: true; body: string; etag: string | null; lastModified: string | null };

export interface ConditionalOptions {
  etag: string | null;
  lastModified: string | null;
  timeoutMs: number;
  maxBytes: number;
  signal: AbortSignal;
  accept?: string;
}

export async function conditionalGet(url: string, options: ConditionalOptions): Promise<ConditionalResult> {
  const { fetchFeed } = await import('./feed-dispatcher.ts');
  const host = new URL(url).host;
  const headers: Record<string, string> = { accept: options.accept ?? '*/*' };
  if (options.etag) headers['if-none-match'] = options.etag;
  if (options.lastModified) headers['if-modified-since'] = options.lastModified;
  let response: Awaited<ReturnType<typeof fetchFeed>>;
  try {
    // Redirects are followed through the same dispatcher, so they are checked too (feed-dispatcher.ts).
    response = await fetchFeed(url, { headers, redirect: 'follow', signal: AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]) });
  } catch (err) {
    throw new Error(`GET ${host} failed`, { cause: err });
  }
  if (response.status === 304) {
    await response.body?.cancel();
    return { modified: false };
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`GET ${host} answered HTTP ${response.status} ${response.statusText}`.trimEnd());
  }
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > options.maxBytes) {
    await response.body?.cancel();
    throw new Error(`GET ${host}: the body of ${declared} bytes exceeds the limit of ${options.maxBytes}`);
  }
  const body = await readCapped(response, options.maxBytes, host);
  return { modified: true, body, etag: response.headers.get('etag'), lastModified: response.headers.get('last-modified') };
}

/**
 * The body as text, read no further than maxBytes: a chunked answer declares no length, and a
 * compressed one is counted as decoded, so neither can fill memory before the limit is seen.
 */
async function readCapped(response: { body: AsyncIterable<Uint8Array> | null }, maxBytes: number, host: string): Promise<string> {
  if (!response.body) return '';
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  // Leaving the loop by throwing cancels the stream, and with it the download.
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new Error(`GET ${host}: the body exceeds the limit of ${maxBytes} bytes`);
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}
