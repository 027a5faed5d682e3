// An OpenAI-compatible chat-completions endpoint on loopback: answers with the recorded response
// shape of the real API (fixtures/tasks/openai-chat-completion.json), its content made from the
// prompt, so a test can tell which task an answer belongs to.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startFakeHttp, type FakeHttp, type FakeResponse, type RecordedRequest } from './fake-http.ts';

const RECORDED = JSON.parse(readFileSync(resolve(import.meta.dirname, '../fixtures/tasks/openai-chat-completion.json'), 'utf8')) as {
  choices: [{ message: { content: string } }];
};

export interface FakeOpenAI extends FakeHttp {
  /** The base URL for LLM_BASE_URL (ends in /v1). */
  baseURL: string;
  /** The user messages of the chat-completion requests received, in order. */
  prompts(): string[];
}

export function completionFor(prompt: string): FakeResponse {
  const body = structuredClone(RECORDED);
  body.choices[0].message.content = `Done: ${prompt.split('\n')[0]}`;
  return { status: 200, body };
}

function userPrompt(req: RecordedRequest): string {
  const body = JSON.parse(req.body) as { messages: { role: string; content: string }[] };
  return body.messages.find((m) => m.role === 'user')?.content ?? '';
}

export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const http = await startFakeHttp((req) => {
    if (req.method === 'POST' && req.path === '/v1/chat/completions') return completionFor(userPrompt(req));
    return { status: 404, body: { error: { message: `Unknown request URL: ${req.method} ${req.path}`, type: 'invalid_request_error', code: 'unknown_url' } } };
  });
  return {
    ...http,
    baseURL: `${http.url}/v1`,
    prompts: () => http.requests.filter((r) => r.path === '/v1/chat/completions').map(userPrompt),
  };
}

/** The API's own error bodies, for scripted failures. */
export const rateLimited = (retryAfterSeconds: number): FakeResponse => ({
  status: 429,
  headers: { 'retry-after': String(retryAfterSeconds) },
  body: { error: { message: 'Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.', type: 'requests', code: 'rate_limit_exceeded' } },
});
export const serverError = (): FakeResponse => ({
  status: 503,
  body: { error: { message: 'The server is overloaded or not ready yet.', type: 'server_error', code: null } },
});
/** What OpenAI answers for a model it does not have. */
export const modelNotFound = (model: string): FakeResponse => ({
  status: 404,
  body: { error: { message: `The model \`${model}\` does not exist or you do not have access to it.`, type: 'invalid_request_error', param: null, code: 'model_not_found' } },
});

export const badRequest = (message: string): FakeResponse => ({
  status: 400,
  body: { error: { message, type: 'invalid_request_error', code: null } },
});
