// Cron schedules parsed and stepped the way Kubernetes' CronJob controller does it: robfig/cron
// v3's standard parser (5 fields or a descriptor) and its SpecSchedule.Next, read and rewritten,
// with Go's time semantics from zoned-time.ts.
//
// Why not cron-parser's iterator: across daylight-saving changes it disagrees with the CronJob
// controller. For `30 2 * * *` in Europe/Berlin, cron-parser runs at 03:30 on the spring-forward
// day and once on the fall-back day; robfig/cron skips the spring day and runs twice in the fall
// (02:30 CEST, then 02:30 CET). The status must say what the CronJob will really do.
import { Zone } from './zoned-time.ts';

interface Bounds {
  min: number;
  max: number;
  names?: Readonly<Record<string, number>>;
}

const MINUTES: Bounds = { min: 0, max: 59 };
const HOURS: Bounds = { min: 0, max: 23 };
const DOM: Bounds = { min: 1, max: 31 };
const MONTHS: Bounds = {
  min: 1,
  max: 12,
  names: { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 },
};
const DOW: Bounds = { min: 0, max: 6, names: { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 } };

/** A field's allowed values, and whether it was written `*` or `?` (robfig's star bit). */
interface FieldSet {
  values: ReadonlySet<number>;
  star: boolean;
}

export class CronSyntaxError extends Error {
  override readonly name = 'CronSyntaxError';
}

export interface CronSchedule {
  readonly expression: string;
  readonly zone: Zone;
  /** The minutes and hours the schedule fires at, ascending (every matching day fires at each hour × minute). */
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  /** The first scheduled instant strictly after `ms` (whole seconds), or undefined when none within 5 years. */
  next(ms: number): number | undefined;
}

const DESCRIPTORS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** Parses a schedule in `zone`; throws CronSyntaxError with robfig's reasons. */
export function parseCron(expression: string, zone: Zone): CronSchedule {
  if (expression.length === 0) throw new CronSyntaxError('empty spec string');
  let spec = expression;
  if (spec.startsWith('@')) {
    const expanded = DESCRIPTORS[spec];
    if (!expanded) throw new CronSyntaxError(`unrecognized descriptor: ${spec}`);
    spec = expanded;
  }
  const fields = spec.split(/\s+/).filter((f) => f.length > 0);
  if (fields.length !== 5) throw new CronSyntaxError(`expected exactly 5 fields, found ${fields.length}: [${fields.join(' ')}]`);
  const [minute, hour, dom, month, dow] = fields as [string, string, string, string, string];
  const spec5 = {
    minute: parseField(minute, MINUTES),
    hour: parseField(hour, HOURS),
    dom: parseField(dom, DOM),
    month: parseField(month, MONTHS),
    dow: parseField(dow, DOW),
  };
  const ascending = (f: FieldSet) => [...f.values].sort((a, b) => a - b);
  return { expression, zone, minutes: ascending(spec5.minute), hours: ascending(spec5.hour), next: (ms) => next(spec5, zone, ms) };
}

function parseField(field: string, bounds: Bounds): FieldSet {
  const values = new Set<number>();
  let star = false;
  for (const range of field.split(',').filter((r) => r.length > 0)) {
    const parsed = parseRange(range, bounds);
    for (const v of parsed.values) values.add(v);
    star ||= parsed.star;
  }
  return { values, star };
}

function parseRange(expr: string, bounds: Bounds): FieldSet {
  const rangeAndStep = expr.split('/');
  const lowAndHigh = rangeAndStep[0]!.split('-');
  let start: number;
  let end: number;
  let star = false;
  if (lowAndHigh[0] === '*' || lowAndHigh[0] === '?') {
    start = bounds.min;
    end = bounds.max;
    star = true;
  } else {
    start = parseIntOrName(lowAndHigh[0]!, bounds);
    if (lowAndHigh.length === 1) end = start;
    else if (lowAndHigh.length === 2) end = parseIntOrName(lowAndHigh[1]!, bounds);
    else throw new CronSyntaxError(`too many hyphens: ${expr}`);
  }
  let step = 1;
  if (rangeAndStep.length === 2) {
    step = parseNonNegativeInt(rangeAndStep[1]!);
    // "N/step" means "N-max/step".
    if (lowAndHigh.length === 1) end = bounds.max;
    if (step > 1) star = false;
  } else if (rangeAndStep.length > 2) {
    throw new CronSyntaxError(`too many slashes: ${expr}`);
  }
  if (start < bounds.min) throw new CronSyntaxError(`beginning of range (${start}) below minimum (${bounds.min}): ${expr}`);
  if (end > bounds.max) throw new CronSyntaxError(`end of range (${end}) above maximum (${bounds.max}): ${expr}`);
  if (start > end) throw new CronSyntaxError(`beginning of range (${start}) beyond end of range (${end}): ${expr}`);
  if (step === 0) throw new CronSyntaxError(`step of range should be a positive number: ${expr}`);
  const values = new Set<number>();
  for (let i = start; i <= end; i += step) values.add(i);
  return { values, star };
}

function parseIntOrName(expr: string, bounds: Bounds): number {
  const named = bounds.names?.[expr.toLowerCase()];
  return named ?? parseNonNegativeInt(expr);
}

function parseNonNegativeInt(expr: string): number {
  // Go's strconv.Atoi: optional sign, decimal digits only.
  if (!/^[+-]?\d+$/.test(expr)) throw new CronSyntaxError(`failed to parse int from ${expr}`);
  const n = Number(expr);
  if (n < 0) throw new CronSyntaxError(`negative number (${n}) not allowed: ${expr}`);
  return n;
}

interface Spec {
  minute: FieldSet;
  hour: FieldSet;
  dom: FieldSet;
  month: FieldSet;
  dow: FieldSet;
}

function dayMatches(s: Spec, w: { day: number; weekday: number }): boolean {
  const domMatch = s.dom.values.has(w.day);
  const dowMatch = s.dow.values.has(w.weekday);
  // Both day fields restricted: either may match (classic cron); otherwise both must.
  return s.dom.star || s.dow.star ? domMatch && dowMatch : domMatch || dowMatch;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** robfig/cron v3 SpecSchedule.Next, step for step (the seconds field is always 0). */
function next(s: Spec, zone: Zone, from: number): number | undefined {
  // Start at the upcoming whole second.
  let t = Math.floor(from / SECOND) * SECOND + SECOND;
  let added = false;
  const yearLimit = zone.wall(t).year + 5;

  wrap: for (;;) {
    let w = zone.wall(t);
    if (w.year > yearLimit) return undefined;

    while (!s.month.values.has(w.month)) {
      if (!added) {
        added = true;
        t = zone.date(w.year, w.month, 1, 0, 0, 0);
        w = zone.wall(t);
      }
      t = zone.date(w.year, w.month + 1, w.day, w.hour, w.minute, w.second);
      w = zone.wall(t);
      if (w.month === 1) continue wrap;
    }

    while (!dayMatches(s, w)) {
      if (!added) {
        added = true;
        t = zone.date(w.year, w.month, w.day, 0, 0, 0);
        w = zone.wall(t);
      }
      t = zone.date(w.year, w.month, w.day + 1, w.hour, w.minute, w.second);
      w = zone.wall(t);
      // Where DST moves midnight, the day starts at 23:00 or 01:00: put it back on midnight.
      if (w.hour !== 0) {
        t += w.hour > 12 ? (24 - w.hour) * HOUR : -w.hour * HOUR;
        w = zone.wall(t);
      }
      if (w.day === 1) continue wrap;
    }

    while (!s.hour.values.has(w.hour)) {
      if (!added) {
        added = true;
        t = zone.date(w.year, w.month, w.day, w.hour, 0, 0);
      }
      t += HOUR;
      w = zone.wall(t);
      if (w.hour === 0) continue wrap;
    }

    while (!s.minute.values.has(w.minute)) {
      if (!added) {
        added = true;
        t = Math.floor(t / MINUTE) * MINUTE;
      }
      t += MINUTE;
      w = zone.wall(t);
      if (w.minute === 0) continue wrap;
    }

    if (w.second !== 0) {
      // robfig steps one second at a time until second 0 and wraps there; zone offsets are whole
      // minutes, so one jump to the next minute lands on the same instant.
      added = true;
      t += (60 - w.second) * SECOND;
      continue wrap;
    }
    return t;
  }
}
