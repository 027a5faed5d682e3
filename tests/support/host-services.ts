// Host PostgreSQL 15 and Redis for process-level tests: each on a free loopback port, with all
// data, logs and pid files in one run folder under a fixed parent. A run killed before stop()
// leaves its folder behind; the next start stops the servers recorded there and removes it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Every run folder lives here, so a later start can find what a killed run left. */
export const HOST_SERVICES_PARENT = join(tmpdir(), 'bgtask-host-services');
const HOST = '127.0.0.1';

export interface HostServices {
  pgUrl: string;
  redisUrl: string;
  runDir: string;
  stop(): Promise<void>;
}

export interface HostServicesOptions {
  /** Fixed ports instead of free ones; a port already in use is an error naming it. */
  pgPort?: number;
  redisPort?: number;
  /** How long each server may take to accept connections. */
  timeoutMs?: number;
  /** Where the PostgreSQL 15 programs are (initdb, postgres). */
  pgBin?: string;
  /** The redis-server program. */
  redisServer?: string;
}

export async function startHostServices(options: HostServicesOptions = {}): Promise<HostServices> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  await cleanLeftovers();
  const [pgPort, redisPort] = [await portFor('postgres', options.pgPort), await portFor('redis', options.redisPort)];
  const runDir = join(HOST_SERVICES_PARENT, `run-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'owner.pid'), String(process.pid));

  const pgBin = options.pgBin ?? process.env.BGTASK_PG_BIN ?? '/usr/lib/postgresql/15/bin';
  const redisServer = options.redisServer ?? process.env.BGTASK_REDIS_SERVER ?? 'redis-server';
  const [postgres, redis] = await Promise.allSettled([
    startPostgres(runDir, pgBin, pgPort, timeoutMs),
    startRedis(runDir, redisServer, redisPort, timeoutMs),
  ]);
  if (postgres.status === 'rejected' || redis.status === 'rejected') {
    // One server failing leaves the other running: stop it before reporting the failure.
    await stopAll([postgres, redis].flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])), runDir);
    throw postgres.status === 'rejected' ? postgres.reason : (redis as PromiseRejectedResult).reason;
  }
  let stopping: Promise<void> | undefined;
  return {
    pgUrl: postgres.value.url,
    redisUrl: redis.value.url,
    runDir,
    stop: () => (stopping ??= stopAll([postgres.value, redis.value], runDir)),
  };
}

interface Server {
  name: string;
  url: string;
  child: ChildProcess;
  /** The signal that shuts it down cleanly and quickly. */
  stopSignal: NodeJS.Signals;
}

async function stopAll(servers: Server[], runDir: string): Promise<void> {
  await Promise.all(servers.map((s) => stopChild(s)));
  rmSync(runDir, { recursive: true, force: true });
}

async function stopChild(server: Server): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(server.stopSignal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

// ------------------------------------------------------------------------------ PostgreSQL

function postgresUser(): { uid: number; gid: number } | undefined {
  // Postgres refuses to run as root: as root, initdb and the server run as the postgres user.
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

function asPostgres(user: { uid: number; gid: number } | undefined, command: string, args: string[]): [string, string[]] {
  // setpriv execs the command in place, so the pid we hold is the server's own.
  return user ? ['setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', command, ...args]] : [command, args];
}

async function startPostgres(runDir: string, pgBin: string, port: number, timeoutMs: number): Promise<Server> {
  const user = postgresUser();
  const pgDir = join(runDir, 'postgres');
  const dataDir = join(pgDir, 'data');
  const passwordFile = join(pgDir, 'password');
  const logFile = join(runDir, 'postgres.log');
  const password = randomBytes(12).toString('hex');
  mkdirSync(pgDir, { mode: 0o700 });
  writeFileSync(passwordFile, password, { mode: 0o600 });
  if (user) {
    chownSync(pgDir, user.uid, user.gid);
    chownSync(passwordFile, user.uid, user.gid);
  }
  const [initCmd, initArgs] = asPostgres(user, join(pgBin, 'initdb'), [
    '-D', dataDir, '-U', 'postgres', `--pwfile=${passwordFile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync',
  ]);
  try {
    execFileSync(initCmd, initArgs, { stdio: 'pipe', encoding: 'utf8' });
  } catch (err) {
    const output = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
    throw new Error(`initdb into ${dataDir} failed:\n${lastLines(output)}`, { cause: err });
  }
  const [cmd, args] = asPostgres(user, join(pgBin, 'postgres'), [
    '-D', dataDir, '-p', String(port),
    '-c', `listen_addresses=${HOST}`,
    '-c', 'unix_socket_directories=',
    // Throw-away data: durability settings off for speed.
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'max_connections=200',
  ]);
  const child = spawnLogged(cmd, args, logFile);
  const url = `postgres://postgres:${password}@${HOST}:${port}/postgres`;
  await waitUntilReady('postgres', port, child, logFile, timeoutMs, async () => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end();
    }
  });
  return { name: 'postgres', url, child, stopSignal: 'SIGINT' };
}

// ------------------------------------------------------------------------------------ Redis

async function startRedis(runDir: string, redisServer: string, port: number, timeoutMs: number): Promise<Server> {
  const redisDir = join(runDir, 'redis');
  const logFile = join(runDir, 'redis.log');
  mkdirSync(redisDir);
  const child = spawnLogged(
    redisServer,
    [
      '--port', String(port), '--bind', HOST, '--dir', redisDir,
      '--pidfile', join(redisDir, 'redis.pid'),
      // No persistence: nothing is written to disk.
      '--save', '', '--appendonly', 'no',
      '--daemonize', 'no',
    ],
    logFile,
  );
  await waitUntilReady('redis', port, child, logFile, timeoutMs, () => redisPing(port));
  return { name: 'redis', url: `redis://${HOST}:${port}`, child, stopSignal: 'SIGTERM' };
}

function redisPing(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: HOST, port });
    let answer = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('no answer to PING within 2 s')));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      answer += d.toString();
      if (answer.includes('\r\n')) {
        socket.end();
        if (answer.startsWith('+PONG')) resolve();
        else reject(new Error(`PING answered ${answer.trim()}`));
      }
    });
    socket.on('error', reject);
  });
}

// --------------------------------------------------------------------------------- helpers

function spawnLogged(command: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    // Detached: a server outlives a killed test process; the next start cleans it up.
    const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

async function waitUntilReady(
  name: string,
  port: number,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
  probe: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  let lastProbeError: unknown;
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`${name} could not be started`, { cause: spawnError });
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = readLog(logFile);
      const inUse = /address already in use/i.test(log) ? ` — port ${port} on ${HOST} is in use` : '';
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before accepting connections${inUse}; last lines of ${logFile}:\n${lastLines(log)}`);
    }
    try {
      await probe();
      return;
    } catch (err) {
      lastProbeError = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`${name} did not accept connections on ${HOST}:${port} within ${timeoutMs} ms; last lines of ${logFile}:\n${lastLines(readLog(logFile))}`, {
    cause: lastProbeError,
  });
}

function readLog(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '(no log written)';
}

function lastLines(text: string, n = 20): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

/** The requested port if it is free (an error naming it otherwise), or a free one. */
async function portFor(name: string, requested: number | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${requested} on ${HOST} is already in use: ${name} cannot listen on it`, { cause: err }) : err),
    );
    server.listen(requested ?? 0, HOST, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : Number(requested)));
    });
  });
}

// ------------------------------------------------------------------------- leftover runs

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return ''; // gone between the two reads
  }
}

function pidFrom(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]?.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Stops the servers of run folders whose owning process is gone, and removes the folders. */
async function cleanLeftovers(): Promise<void> {
  if (!existsSync(HOST_SERVICES_PARENT)) return;
  for (const entry of readdirSync(HOST_SERVICES_PARENT)) {
    const dir = join(HOST_SERVICES_PARENT, entry);
    const owner = pidFrom(join(dir, 'owner.pid'));
    if (owner !== undefined && isAlive(owner)) continue; // another test process is using it
    const servers = [
      { pid: pidFrom(join(dir, 'postgres', 'data', 'postmaster.pid')), expect: 'postgres', signal: 'SIGINT' as const },
      { pid: pidFrom(join(dir, 'redis', 'redis.pid')), expect: 'redis-server', signal: 'SIGTERM' as const },
    ];
    for (const { pid, expect, signal } of servers) {
      // Only a process that still is the recorded server (pids get reused) is stopped.
      if (pid === undefined || !isAlive(pid) || !commandOf(pid).includes(expect)) continue;
      process.kill(pid, signal);
      const deadline = Date.now() + 15_000;
      while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
