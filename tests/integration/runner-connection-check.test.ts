// ai.test-scheduler-connection as a process: latencies of what answers, a failure naming what
// does not. The LLM endpoint is a local OpenAI-compatible HTTP server answering GET /v1/models.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { closedPort } from '../support/runner-net.ts';
import { buildRunner, runRunner } from '../support/runner-process.ts';

const TASK = 'ai.test-scheduler-connection';
let url: string;
const llm = { base: '', status: 200, requests: [] as { url: string; headers: IncomingHttpHeaders }[] };
let llmServer: Server;

beforeAll(async () => {
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), 'runner_connection_check'));
  llmServer = createServer((req, res) => {
    llm.requests.push({ url: req.url ?? '', headers: req.headers });
    if (req.url !== '/v1/models') return res.writeHead(404).end();
    res.writeHead(llm.status, { 'content-type': 'application/json' });
    res.end(llm.status === 200 ? JSON.stringify({ object: 'list', data: [{ id: 'small' }, { id: 'large' }] }) : '{"error":"overloaded"}');
  });
  await new Promise<void>((resolve) => llmServer.listen(0, '127.0.0.1', resolve));
  llm.base = `http://127.0.0.1:${(llmServer.address() as { port: number }).port}/v1`;
});
afterAll(async () => {
  await new Promise((resolve) => llmServer.close(resolve));
});

const services = () => ({ DATABASE_URL: url, REDIS_URL: inject('redisUrl') });

describe(TASK, () => {
  it('reports Postgres and Redis latencies when both answer, and records the run', async () => {
    const exit = await runRunner(['run', TASK], { ...services(), BGTASK_RUN_ID: 'check-1' });
    expect(exit.code, exit.stdout).toBe(0);
    const summary = exit.result?.summary ?? {};
    expect(summary).toMatchObject({ checks: 2, postgres_ok: true, redis_ok: true, postgres_version: expect.stringMatching(/^15\./) });
    expect(summary.postgres_ms).toBeTypeOf('number');
    expect(summary.redis_ms).toBeTypeOf('number');
    expect(summary).not.toHaveProperty('llm_ok');
    const db = testPool(url);
    try {
      const { rows } = await db.query('SELECT outcome FROM task_runs WHERE run_id = $1', ['check-1']);
      expect(rows).toEqual([{ outcome: 'Succeeded' }]);
    } finally {
      await db.end();
    }
  });

  it('checks the LLM endpoint when LLM_BASE_URL is set, with the API key', async () => {
    llm.status = 200;
    const exit = await runRunner(['run', TASK], { ...services(), LLM_BASE_URL: llm.base, LLM_API_KEY: 'sk-test' });
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ checks: 3, llm_ok: true, llm_models: 2 });
    expect(llm.requests.at(-1)).toMatchObject({ url: '/v1/models', headers: { authorization: 'Bearer sk-test' } });
  });

  it('fails when the LLM endpoint errs, unless that check is optional', async () => {
    llm.status = 503;
    const failed = await runRunner(['run', TASK], { ...services(), LLM_BASE_URL: llm.base });
    expect(failed.code).toBe(1);
    expect(failed.result).toMatchObject({ outcome: 'Failed', summary: { llm_ok: false, postgres_ok: true, redis_ok: true } });
    expect(failed.result?.message).toBe('required checks failed: llm (llm check failed: GET /models answered HTTP 503)');

    const tolerated = await runRunner(['run', TASK, '--params', '{"optional":["llm"]}'], { ...services(), LLM_BASE_URL: llm.base });
    expect(tolerated.code).toBe(0);
    expect(tolerated.result).toMatchObject({ outcome: 'Succeeded', summary: { llm_ok: false }, message: 'checked postgres, redis, llm; optional failing: llm' });
  });

  it('fails naming Postgres when it is down, still reporting Redis', async () => {
    const port = await closedPort();
    const exit = await runRunner(['run', TASK], { ...services(), DATABASE_URL: `postgres://postgres:x@127.0.0.1:${port}/postgres` });
    expect(exit.code).toBe(1);
    expect(exit.result?.summary).toMatchObject({ postgres_ok: false, redis_ok: true });
    expect(exit.result?.message).toBe(`required checks failed: postgres (postgres check failed: connect ECONNREFUSED 127.0.0.1:${port})`);
  });

  it('fails with the cause when Redis is down, still reporting Postgres, unless Redis is optional', async () => {
    const port = await closedPort();
    const exit = await runRunner(['run', TASK], { ...services(), REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(exit.code).toBe(1);
    expect(exit.result?.summary).toMatchObject({ postgres_ok: true, redis_ok: false });
    expect(exit.result?.message).toBe(`required checks failed: redis (redis check failed: redis at 127.0.0.1:${port} is unreachable: connect ECONNREFUSED 127.0.0.1:${port})`);
    const tolerated = await runRunner(['run', TASK, '--params', '{"optional":["redis"]}'], { ...services(), REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(tolerated.code, tolerated.stdout).toBe(0);
    expect(tolerated.result).toMatchObject({ outcome: 'Succeeded', summary: { postgres_ok: true, redis_ok: false }, message: 'checked postgres, redis; optional failing: redis' });
    const unset = await runRunner(['run', TASK, '--params', '{"optional":["redis"]}'], { ...services(), REDIS_URL: '' });
    expect(unset.result).toMatchObject({ outcome: 'Succeeded', summary: { redis_ok: false } });
  });

  it('checks the Kubernetes API when one is configured, and fails when it does not answer', async () => {
    const port = await closedPort();
    const kube = { BGTASK_KUBE_API: `https://127.0.0.1:${port}`, BGTASK_KUBE_TOKEN_FILE: '/dev/null' };
    const exit = await runRunner(['run', TASK, '--params', '{"timeoutMs":3000}'], { ...services(), ...kube });
    expect(exit.code).toBe(1);
    expect(exit.result?.summary).toMatchObject({ checks: 3, kubernetes_ok: false });
    expect(exit.result?.message).toMatch(new RegExp(`kubernetes check failed: GET /version to 127.0.0.1:${port} failed: connect ECONNREFUSED`));
  });
});
