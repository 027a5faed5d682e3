// The host-services harness itself (tests/support/host-services.ts): it starts real PostgreSQL and
// Redis, reports a busy port or a silent server clearly, and cleans up after a killed test run.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { HOST_SERVICES_PARENT, startHostServices } from '../support/host-services.ts';

const scratch = mkdtempSync(join(tmpdir(), 'runner-host-services-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const runFolders = () => new Set(existsSync(HOST_SERVICES_PARENT) ? readdirSync(HOST_SERVICES_PARENT) : []);

async function pgAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false; // refused: the answer to the question asked
  } finally {
    await client.end();
  }
}

describe('startHostServices', () => {
  it('starts PostgreSQL (password auth) and Redis, and stop() removes them and their folder', async () => {
    const services = await startHostServices();
    try {
      expect(services.pgUrl).toMatch(/^postgres:\/\/postgres:[0-9a-f]+@127\.0\.0\.1:\d+\/postgres$/);
      expect(await pgAnswers(services.pgUrl)).toBe(true);
      expect(await pgAnswers(services.pgUrl.replace(/:[0-9a-f]+@/, ':wrong@'))).toBe(false);
      const { Redis } = (await import('ioredis')).default;
      const redis = new Redis(services.redisUrl, { lazyConnect: true });
      await redis.connect();
      expect(await redis.ping()).toBe('PONG');
      redis.disconnect();
    } finally {
      await services.stop();
    }
    expect(existsSync(services.runDir)).toBe(false);
    expect(await pgAnswers(services.pgUrl)).toBe(false);
  });

  it('names a port that is already in use', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    const before = runFolders();
    try {
      await expect(startHostServices({ redisPort: port })).rejects.toThrow(`port ${port} on 127.0.0.1 is already in use: redis cannot listen on it`);
    } finally {
      busy.close();
    }
    expect(runFolders()).toEqual(before);
  });

  it('gives up on a server that never answers, with the last lines of its log, and stops the other', async () => {
    const fake = join(scratch, 'silent-redis');
    writeFileSync(fake, '#!/bin/sh\necho "silent redis: listening nowhere"\nexec sleep 60\n');
    chmodSync(fake, 0o755);
    const before = runFolders();
    await expect(startHostServices({ redisServer: fake, timeoutMs: 1500 })).rejects.toThrow(
      /redis did not accept connections on 127\.0\.0\.1:\d+ within 1500 ms; last lines of .*redis\.log:\nsilent redis: listening nowhere/,
    );
    expect(runFolders()).toEqual(before);
  });

  it('cleans up what a killed test run left behind', async () => {
    const harness = pathToFileURL(resolve(import.meta.dirname, '../support/host-services.ts')).href;
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', `const s = await (await import(${JSON.stringify(harness)})).startHostServices(); console.log(JSON.stringify(s)); setInterval(() => {}, 1e9);`],
      { cwd: resolve(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const leftover = await new Promise<{ pgUrl: string; runDir: string }>((resolveLine, reject) => {
      child.stdout.setEncoding('utf8').once('data', (line: string) => resolveLine(JSON.parse(line)));
      child.once('exit', (code) => reject(new Error(`the harness exited ${code} before starting`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await pgAnswers(leftover.pgUrl)).toBe(true); // the killed run's servers live on…

    const services = await startHostServices(); // …until the next start
    try {
      expect(existsSync(leftover.runDir)).toBe(false);
      expect(await pgAnswers(leftover.pgUrl)).toBe(false);
    } finally {
      await services.stop();
    }
  });
});
