// JSON helpers for "did anything change?": comparison that ignores key order, a stable hash,
// and RFC 7386 merge patches computed from two documents.
import { createHash } from 'node:crypto';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The value as JSON would carry it: toJSON applied (Dates become strings), undefined members
 * dropped; with `sorted`, each object's members in sorted key order: the canonical form in one
 * copy (a JSON copy and then a sorted one made the CronJob hash a sixth of the operator's
 * allocation per task created; profiled).
 */
export function toJson(value: unknown, sorted = false): Json | undefined {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return null; // as JSON.stringify does
    if (typeof value === 'bigint') throw new Error('BigInt has no JSON form');
    return value as Json;
  }
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return toJson(withToJson.toJSON(), sorted);
  if (Array.isArray(value)) return value.map((v) => toJson(v, sorted) ?? null);
  const out: Record<string, Json> = {};
  const keys = Object.keys(value);
  if (sorted && !inOrder(keys)) keys.sort(); // sort() allocates a work array even for sorted input
  for (const k of keys) {
    const j = toJson((value as Record<string, unknown>)[k], sorted);
    if (j !== undefined) out[k] = j;
  }
  return out;
}

function inOrder(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) return false;
  return true;
}

/** JSON with object keys sorted at every level: equal documents give equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(toJson(value, true) ?? null);
}

/** sha256 of the canonical JSON, base64url: short enough for an annotation value. */
export function hashJson(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('base64url');
}

/** Deep equality of two JSON documents; key order and undefined members do not matter. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return deepEqual(toJson(a), toJson(b));
}

function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k] as Json, b[k] as Json));
  }
  return false;
}

/**
 * The merge patch that turns `live` into `desired` (RFC 7386: objects merge, removed members are
 * null, arrays and scalars are replaced), or undefined when they are equal.
 */
export function mergePatch(live: unknown, desired: unknown): Json | undefined {
  return diff(toJson(live), toJson(desired));
}

function diff(live: Json | undefined, desired: Json | undefined): Json | undefined {
  if (deepEqual(live, desired)) return undefined;
  if (desired === undefined) return null;
  if (!isPlainObject(live) || !isPlainObject(desired)) return desired;
  const patch: Record<string, Json> = {};
  for (const [k, v] of Object.entries(desired)) {
    const d = diff(live[k], v);
    if (d !== undefined) patch[k] = d;
  }
  for (const k of Object.keys(live)) if (!Object.hasOwn(desired, k)) patch[k] = null;
  return patch;
}

/**
 * A merge patch that changes only the members `desired` names: a member set to undefined is
 * removed, a member not named is left as it is (another writer may own it), and within a named
 * member the whole value is desired (its stale sub-members are removed).
 */
export function partialMergePatch(live: Record<string, unknown> | undefined, desired: Record<string, unknown>): Record<string, Json> | undefined {
  const base = isPlainObject(live) ? (toJson(live) as Record<string, Json>) : {};
  const patch: Record<string, Json> = {};
  for (const [k, v] of Object.entries(desired)) {
    const d = diff(base[k], toJson(v));
    if (d !== undefined) patch[k] = d;
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}
