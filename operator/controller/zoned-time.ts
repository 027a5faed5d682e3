// Wall-clock arithmetic in an IANA time zone, with Go's semantics: the CronJob controller computes
// schedules with Go's time package, and a status that names the next run has to agree with it
// to the second, across daylight-saving changes too. Times are epoch milliseconds.

export interface WallTime {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday */
  weekday: number;
}

export class UnknownTimeZoneError extends Error {
  override readonly name = 'UnknownTimeZoneError';
}

/** Zones by name: every task with the same time zone shares one (building it asks ICU twice). */
const zones = new Map<string, Zone>();

export class Zone {
  private readonly format: Intl.DateTimeFormat;
  /** UTC needs no Intl: formatToParts is most of a reconcile's CPU time for a UTC schedule. */
  private readonly utc: boolean;

  private constructor(readonly name: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    this.utc = this.format.resolvedOptions().timeZone === 'UTC';
  }

  /** The zone called `name` (an empty or missing name is UTC); throws UnknownTimeZoneError. */
  static load(name: string | undefined): Zone {
    const zoneName = name === undefined || name === '' ? 'UTC' : name;
    let zone = zones.get(zoneName);
    if (zone) return zone;
    try {
      zone = new Zone(zoneName);
    } catch (err) {
      throw new UnknownTimeZoneError(`unknown time zone ${JSON.stringify(zoneName)}`, { cause: err });
    }
    zones.set(zoneName, zone); // only names ICU knows get here: a bounded set
    return zone;
  }

  /** The wall-clock time at instant `ms`. */
  wall(ms: number): WallTime {
    if (this.utc) {
      const d = new Date(ms);
      return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), weekday: d.getUTCDay() };
    }
    const parts: Record<string, string> = {};
    for (const p of this.format.formatToParts(new Date(ms))) parts[p.type] = p.value;
    const yearOfEra = Number(parts.year);
    const year = parts.era === 'BC' || parts.era === 'B' ? 1 - yearOfEra : yearOfEra;
    const month = Number(parts.month);
    const day = Number(parts.day);
    return {
      year,
      month,
      day,
      hour: Number(parts.hour),
      minute: Number(parts.minute),
      second: Number(parts.second),
      weekday: new Date(utcOf(year, month, day, 0, 0, 0)).getUTCDay(),
    };
  }

  /** Seconds east of UTC at instant `ms`. */
  offsetSeconds(ms: number): number {
    if (this.utc) return 0;
    const w = this.wall(ms);
    const asUtc = utcOf(w.year, w.month, w.day, w.hour, w.minute, w.second);
    return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 1000);
  }

  /**
   * Go's time.Date(year, month, day, hour, min, sec, 0, zone): out-of-range fields carry over
   * (day 32 is the 1st of the next month), and a wall time the zone skips or repeats resolves the
   * way Go resolves it — 02:30 on a spring-forward day becomes 03:30, and on a fall-back day it is
   * the second 02:30 when the first guess lands in the later period.
   */
  date(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
    const local = utcOf(year, month, day, hour, minute, second);
    // Go: look up the offset as if the wall time were UTC, and if the UTC time that gives lies in
    // another zone period, take that period's offset instead.
    const guess = this.offsetSeconds(local);
    if (guess === 0) return local;
    const utc = local - guess * 1000;
    const actual = this.offsetSeconds(utc);
    return actual === guess ? utc : local - actual * 1000;
  }
}

/** Epoch ms of a wall time read as UTC; fields carry over like Date.UTC, years 0-99 included. */
function utcOf(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime();
}
