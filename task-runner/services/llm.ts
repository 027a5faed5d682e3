/**
 * Chat completions against an OpenAI-compatible endpoint through the official `openai` client.
 * The client retries 408/409/429/5xx and connection failures itself, with exponential backoff
 * that honours Retry-After; what is left after its retries is either "the endpoint is
 * unreachable" (nothing answered: the work should wait for the next run) or an answer that
 * failed the request (the work failed).
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
  /** True when no HTTP answer came back at all (refused, reset, timed out), after the client's retries. */
  isUnreachable(err: unknown): boolean;
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

export async function openChatClient(options: ChatClientOptions): Promise<ChatClient> {
  const { default: OpenAI, APIConnectionError } = await import('openai');
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
    isUnreachable: (err) => err instanceof APIConnectionError,
  };
}
