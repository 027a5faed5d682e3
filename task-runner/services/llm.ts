/**
 * Chat completions against an OpenAI-compatible endpoint through the official `openai` client.
 * The client retries 408/409/429/5xx and connection failures itself, with exponential backoff
 * that honours Retry-After. What is left after its retries is either the endpoint's problem
 * (nothing answered, it stayed overloaded, or it refuses our credentials: every request would meet
 * the same, so the work waits for the next run) or an answer that refused this request (the work
 * failed).
 */
export interface ChatMessage {
  role: 'system' | 'user';
  content: string;
}

export interface Completion {
  text: string;
  model: string;
  totalTokens: number | undefined;
}

export interface ChatClient {
  complete(messages: ChatMessage[], signal: AbortSignal): Promise<Completion>;
  /**
   * Why the endpoint, not this request, failed, after the client's retries: no HTTP answer at
   * all (refused, reset, timed out), or 401, 403, 404, 405, 408, 409, 429 or 5xx. Undefined for
   * an answer that refused this request (400, 422 …).
   */
  endpointProblem(err: unknown): string | undefined;
}

export interface ChatClientOptions {
  baseURL: string;
  apiKey: string | undefined;
  model: string;
  /** Retries after the first attempt, for 429, 5xx and connection failures. */
  maxRetries: number;
  timeoutMs: number;
  temperature?: number | undefined;
}

/**
 * Answers about the endpoint or our account, not the request, which every request would get:
 * 401/403 credentials, 404/405 a model or route that does not exist there (a misspelt model, a
 * base URL without /v1), 408/409/429 load.
 */
const ENDPOINT_STATUSES = new Set([401, 403, 404, 405, 408, 409, 429]);

export async function openChatClient(options: ChatClientOptions): Promise<ChatClient> {
  const { default: OpenAI, APIConnectionError, APIError } = await import('openai');
  const client = new OpenAI({
    baseURL: options.baseURL,
    // A local OpenAI-compatible server may need no key, but the client insists on one.
    apiKey: options.apiKey ?? 'not-needed',
    maxRetries: options.maxRetries,
    timeout: options.timeoutMs,
  });
  return {
    async complete(messages, signal) {
      const response = await client.chat.completions.create(
        { model: options.model, messages, ...(options.temperature === undefined ? {} : { temperature: options.temperature }) },
        { signal },
      );
      const text = response.choices[0]?.message?.content;
      if (typeof text !== 'string') throw new Error(`the completion from ${options.baseURL} has no message content`);
      return { text, model: response.model, totalTokens: response.usage?.total_tokens };
    },
    endpointProblem(err) {
      if (err instanceof APIConnectionError) return 'the LLM endpoint is unreachable';
      const status = err instanceof APIError ? err.status : undefined;
      if (status !== undefined && (ENDPOINT_STATUSES.has(status) || status >= 500)) return `the LLM endpoint answered HTTP ${status}`;
      return undefined;
    },
  };
}
