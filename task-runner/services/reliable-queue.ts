/**
 * A reliable Redis queue (the "reliable queue" pattern of the LMOVE documentation). Producers
 * LPUSH items onto `<prefix>:queue`; a consumer moves each atomically onto `<prefix>:processing`
 * and records when it did in the hash `<prefix>:claims`, so an item is always in exactly one of
 * queue, processing or dead-letter list. An item is removed from processing only by an ack, a
 * release back to the queue, or a move to the dead-letter list. Items a crashed consumer left in
 * processing go back to the queue once their claim is older than the visibility timeout; each
 * such return and each failed attempt counts in `<prefix>:attempts`, and the item goes to
 * `<prefix>:dead` after `maxAttempts`, so a message that kills its consumer cannot loop forever.
 * The ack records `<prefix>:sent:<id>` in the same script: an item delivered again after it was
 * handled is recognised and only acknowledged.
 *
 * Keys share one hash tag, so the scripts work on Redis Cluster too. Time is the server's
 * (TIME), so consumers on machines with skewed clocks agree on claim ages.
 */
import type { Redis } from 'ioredis';

const NOW_MS = "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

// KEYS: queue, processing, claims. ARGV: max.
const CLAIM = `${NOW_MS}
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local v = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not v then break end
  redis.call('HSET', KEYS[3], v, now)
  out[#out + 1] = v
end
return out`;

// KEYS: processing, claims, attempts, sent. ARGV: item, ttl seconds.
const ACK = `${NOW_MS}
redis.call('SET', KEYS[4], now, 'NX', 'EX', tonumber(ARGV[2]))
local n = redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return n`;

// Back to the front of the queue (consumers pop from the right), no attempt counted.
// KEYS: processing, queue, claims. ARGV: item.
const RELEASE = `
local n = redis.call('LREM', KEYS[1], 1, ARGV[1])
if n > 0 then redis.call('RPUSH', KEYS[2], ARGV[1]) end
redis.call('HDEL', KEYS[3], ARGV[1])
return n`;

// A failed attempt: dead-lettered at maxAttempts (or at once when ARGV[3] is '1'), else to the
// back of the queue. Returns 'requeued', 'dead' or 'gone' (no longer ours: another consumer
// reclaimed it). KEYS: processing, queue, claims, attempts, dead. ARGV: item, max, permanent, error.
const FAIL = `${NOW_MS}
local n = redis.call('LREM', KEYS[1], 1, ARGV[1])
if n == 0 then return 'gone' end
redis.call('HDEL', KEYS[3], ARGV[1])
local a = redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
if ARGV[3] == '1' or a >= tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('LPUSH', KEYS[5], cjson.encode({ item = ARGV[1], error = ARGV[4], attempts = a, dead_at_ms = now }))
  return 'dead'
end
redis.call('LPUSH', KEYS[2], ARGV[1])
return 'requeued'`;

// Done for part of it, with what is left as new items, in one step so no part is lost: the item is
// acked as by ACK; a retry part goes to the back of the queue carrying the item's attempts plus
// one (dead-lettered instead at maxAttempts); a dead part goes to the dead-letter list. Returns
// the retry part's fate: 'requeued', 'dead' or 'none'. KEYS: processing, queue, claims, attempts,
// dead, sent. ARGV: item, ttl seconds, max, retry item, retry error, dead item, dead error ('' for no part).
const ACK_PARTIAL = `${NOW_MS}
local a = (tonumber(redis.call('HGET', KEYS[4], ARGV[1])) or 0) + 1
redis.call('SET', KEYS[6], now, 'NX', 'EX', tonumber(ARGV[2]))
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if ARGV[6] ~= '' then
  redis.call('LPUSH', KEYS[5], cjson.encode({ item = ARGV[6], error = ARGV[7], attempts = a, dead_at_ms = now }))
end
if ARGV[4] == '' then return 'none' end
if a >= tonumber(ARGV[3]) then
  redis.call('LPUSH', KEYS[5], cjson.encode({ item = ARGV[4], error = ARGV[5], attempts = a, dead_at_ms = now }))
  return 'dead'
end
redis.call('HSET', KEYS[4], ARGV[4], a)
redis.call('LPUSH', KEYS[2], ARGV[4])
return 'requeued'`;

// Claims older than the visibility timeout: their consumer died. Back to the front of the
// queue, counted as an attempt. KEYS: processing, queue, claims, attempts, dead. ARGV: visibility ms, max.
const RECLAIM = `${NOW_MS}
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local requeued, dead = 0, 0
for _, v in ipairs(items) do
  local at = tonumber(redis.call('HGET', KEYS[3], v))
  if at == nil or now - at > tonumber(ARGV[1]) then
    redis.call('LREM', KEYS[1], 1, v)
    redis.call('HDEL', KEYS[3], v)
    local a = redis.call('HINCRBY', KEYS[4], v, 1)
    if a >= tonumber(ARGV[2]) then
      redis.call('HDEL', KEYS[4], v)
      redis.call('LPUSH', KEYS[5], cjson.encode({ item = v, error = 'visibility timeout expired ' .. a .. ' times', attempts = a, dead_at_ms = now }))
      dead = dead + 1
    else
      redis.call('RPUSH', KEYS[2], v)
      requeued = requeued + 1
    end
  end
end
return { requeued, dead }`;

const SCRIPTS = { CLAIM: [3, CLAIM], ACK: [4, ACK], ACK_PARTIAL: [6, ACK_PARTIAL], RELEASE: [3, RELEASE], FAIL: [5, FAIL], RECLAIM: [5, RECLAIM] } as const;
type ScriptName = keyof typeof SCRIPTS;

export interface QueueKeys {
  queue: string;
  processing: string;
  claims: string;
  attempts: string;
  dead: string;
  sent(id: string): string;
}

export function queueKeys(name: string): QueueKeys {
  const p = `bgtask:{${name}}`;
  return {
    queue: `${p}:queue`,
    processing: `${p}:processing`,
    claims: `${p}:claims`,
    attempts: `${p}:attempts`,
    dead: `${p}:dead`,
    sent: (id) => `${p}:sent:${id}`,
  };
}

/** An item made from part of another, and why it was made (the dead letter's error). */
export interface QueuePart {
  item: string;
  error: string;
}

export interface ReliableQueue {
  readonly keys: QueueKeys;
  /** Moves up to `max` items from the queue to processing, oldest first. */
  claim(max: number): Promise<string[]>;
  /** Whether the item with this id was handled already (an ack recorded it). */
  wasHandled(id: string): Promise<boolean>;
  /** Done: records the id as handled and removes the item from processing, atomically. */
  ack(item: string, id: string): Promise<void>;
  /**
   * Done in part: acked like `ack`, and atomically with it the rest becomes new items, `retry` to
   * the back of the queue as a further attempt (dead at maxAttempts), `dead` to the dead letters.
   */
  ackPartial(item: string, id: string, rest: { retry?: QueuePart | undefined; dead?: QueuePart | undefined }): Promise<'requeued' | 'dead' | 'none'>;
  /** Not attempted (stopping, or the downstream is down): back to the front of the queue. */
  release(item: string): Promise<void>;
  /** A failed attempt; `permanent` dead-letters at once. */
  fail(item: string, error: string, permanent: boolean): Promise<'requeued' | 'dead' | 'gone'>;
  /** Returns items whose claim outlived the visibility timeout. */
  reclaimExpired(): Promise<{ requeued: number; dead: number }>;
}

export function reliableQueue(redis: Redis, name: string, options: { visibilityMs: number; maxAttempts: number; handledTtlSeconds: number }): ReliableQueue {
  const keys = queueKeys(name);
  for (const [script, [numberOfKeys, lua]] of Object.entries(SCRIPTS)) {
    // defineCommand sends EVALSHA and falls back to EVAL when the server lacks the script.
    redis.defineCommand(`bgtaskQueue${script}`, { numberOfKeys, lua });
  }
  const call = <T>(script: ScriptName, ...args: (string | number)[]): Promise<T> =>
    (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<T>>)[`bgtaskQueue${script}`]!(...args);
  return {
    keys,
    claim: (max) => call<string[]>('CLAIM', keys.queue, keys.processing, keys.claims, max),
    wasHandled: async (id) => (await redis.exists(keys.sent(id))) === 1,
    ack: async (item, id) => {
      await call('ACK', keys.processing, keys.claims, keys.attempts, keys.sent(id), item, options.handledTtlSeconds);
    },
    ackPartial: (item, id, { retry, dead }) =>
      call('ACK_PARTIAL', keys.processing, keys.queue, keys.claims, keys.attempts, keys.dead, keys.sent(id), item, options.handledTtlSeconds,
        options.maxAttempts, retry?.item ?? '', retry?.error ?? '', dead?.item ?? '', dead?.error ?? ''),
    release: async (item) => {
      await call('RELEASE', keys.processing, keys.queue, keys.claims, item);
    },
    fail: (item, error, permanent) =>
      call('FAIL', keys.processing, keys.queue, keys.claims, keys.attempts, keys.dead, item, options.maxAttempts, permanent ? '1' : '0', error),
    reclaimExpired: async () => {
      const [requeued, dead] = await call<[number, number]>('RECLAIM', keys.processing, keys.queue, keys.claims, keys.attempts, keys.dead, options.visibilityMs, options.maxAttempts);
      return { requeued, dead };
    },
  };
}
