import * as z from 'zod';
import { kubeEndpoint } from '../../kube-endpoint.ts';
import { defineTask, type SummaryValue } from '../../task.ts';

const CHECKS = ['postgres', 'redis', 'kubernetes', 'llm'] as const;
type CheckName = (typeof CHECKS)[number];

export default defineTask({
  name: 'ai.test-scheduler-connection',
  family: 'ai',
  description: 'Checks that Postgres, Redis, the Kubernetes API and the LLM endpoint (when configured) answer, with latencies',
  params: z.strictObject({
    timeoutMs: z.int().min(100).max(60_000).default(5000).describe('time each check may take'),
    optional: z.array(z.enum(CHECKS)).default([]).describe('checks that are reported but do not fail the run'),
  }),
  defaults: {
    schedule: '*/30 * * * *',
    retry: { maxRetries: 3, delaySeconds: 60, backoff: 'Fixed' },
    timeoutSeconds: 120,
    softTimeoutSeconds: 90,
  },
  // Redis is opened by its own check, not by the runner before the task: one service down must
  // not hide the others' answers, and `optional: ["redis"]` must be able to tolerate it.
  needs: { postgres: true },
  async run(ctx) {
    const { timeoutMs, optional } = ctx.params;
    const probes = new Map<CheckName, () => Promise<Record<string, SummaryValue>>>();
    probes.set('postgres', async () => {
      const { rows } = await ctx.db.query<{ v: string }>('SELECT current_setting($1) AS v', ['server_version']);
      return { postgres_version: rows[0]?.v ?? '' };
    });
    probes.set('redis', async () => {
      const url = ctx.env.REDIS_URL;
      if (!url) throw new Error('REDIS_URL is not set');
      const { connectRedis } = await import('../../services/redis.ts');
      const redis = await connectRedis(url, { connectTimeoutMs: timeoutMs, log: ctx.log });
      try {
        const answer = await redis.ping();
        if (answer !== 'PONG') throw new Error(`PING answered ${answer}`);
        return {};
      } finally {
        redis.disconnect();
      }
    });
    const endpoint = kubeEndpoint(ctx.env);
    if (endpoint) {
      probes.set('kubernetes', async () => {
        const { kubeClient } = await import('../../kube-api.ts');
        const client = kubeClient(endpoint, { timeoutMs });
        try {
          const version = (await client.request('GET', '/version')) as { gitVersion?: string };
          return { kubernetes_version: version.gitVersion ?? '' };
        } finally {
          client.close();
        }
      });
    }
    const llmBase = ctx.env.LLM_BASE_URL;
    if (llmBase) {
      probes.set('llm', async () => {
        // OpenAI-compatible: GET {base}/models lists the models the endpoint serves.
        const res = await fetch(`${llmBase.replace(/\/$/, '')}/models`, {
          headers: ctx.env.LLM_API_KEY ? { authorization: `Bearer ${ctx.env.LLM_API_KEY}` } : {},
          signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]),
        });
        if (!res.ok) throw new Error(`GET /models answered HTTP ${res.status}`);
        const body = (await res.json()) as { data?: unknown[] };
        return { llm_models: Array.isArray(body.data) ? body.data.length : 0 };
      });
    }

    const results = await Promise.all(
      [...probes].map(async ([name, probe]) => {
        const started = performance.now();
        try {
          const details = await withTimeout(probe(), timeoutMs, name);
          ctx.set(`${name}_ms`, Math.round((performance.now() - started) * 10) / 10);
          ctx.set(`${name}_ok`, true);
          for (const [key, value] of Object.entries(details)) ctx.set(key, value);
          ctx.log.info({ check: name, ms: Math.round(performance.now() - started) }, `${name} answered`);
          return undefined;
        } catch (err) {
          ctx.set(`${name}_ok`, false);
          ctx.log.warn({ check: name, err }, `${name} check failed`);
          return { name, err };
        }
      }),
    );
    ctx.set('checks', probes.size);
    const failed = results.filter((r) => r !== undefined);
    const fatal = failed.filter((f) => !optional.includes(f.name));
    if (fatal.length > 0) {
      throw new AggregateError(
        fatal.map((f) => new Error(`${f.name} check failed`, { cause: f.err })),
        `required checks failed: ${fatal.map((f) => f.name).join(', ')}`,
      );
    }
    const checked = [...probes.keys()].join(', ');
    return failed.length > 0 ? `checked ${checked}; optional failing: ${failed.map((f) => f.name).join(', ')}` : `all answered: ${checked}`;
  },
});

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
