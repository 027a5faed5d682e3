/**
 * An iCalendar feed (RFC 5545) as calendar_events rows, parsed by ical.js, whose errors name
 * the offending line. A recurring event becomes one row per occurrence inside a window, each
 * identified by its RECURRENCE-ID (the occurrence's original start), so an overridden
 * occurrence (a VEVENT carrying that RECURRENCE-ID) replaces exactly its instance and EXDATEs
 * leave theirs out. Times with a TZID are resolved with the IANA database (luxon), falling back
 * to the feed's own VTIMEZONE for names IANA lacks (Outlook's "W. Europe Standard Time");
 * floating times and all-day dates are in the calendar owner's zone.
 *
 * A feed that does not parse is refused whole. An event that parses but cannot be made into rows
 * (no UID, no DTSTART, an end before its start, a time zone nobody knows) is skipped with its
 * reason, with its overrides: one bad event in a calendar of thousands must not stop the rest from
 * syncing, hour after hour, when no retry can mend it. The caller keeps what it stored of a skipped
 * UID: the event is still in the feed, only unreadable now.
 */
import ICAL from 'ical.js';
import { DateTime } from 'luxon';

export interface EventRow {
  uid: string;
  recurrenceId: Date | null;
  summary: string;
  description: string | null;
  location: string | null;
  startsAt: Date;
  endsAt: Date | null;
  allDay: boolean;
  rrule: string | null;
  status: 'tentative' | 'confirmed' | 'cancelled';
  sequence: number;
}

export interface ExpandOptions {
  /** Zone of floating times and all-day dates: the user's. */
  defaultZone: string;
  /** Occurrences of recurring events are kept when they overlap [from, to]. */
  from: Date;
  to: Date;
  /** Occurrences looked at per recurring event at most (a guard against unbounded rules). */
  maxOccurrences: number;
}

/** An event left out of the rows, and why. */
export interface SkippedEvent {
  /** Its UID; null when it has none (then nothing of it can be kept either). */
  uid: string | null;
  reason: string;
}

export interface ParsedFeed {
  rows: EventRow[];
  /**
   * The UID of every VEVENT of the feed, each once: also the events with no occurrence inside the
   * window, and the skipped ones that have a UID. What the feed holds, whatever the window.
   */
  uids: string[];
  /** Recurring events whose expansion hit maxOccurrences before the window's end. */
  truncated: number;
  skipped: SkippedEvent[];
}

type Instant = (time: ICAL.Time, tzid: string | null) => Date;

// Overrides are matched here, by RECURRENCE-ID. Without an explicit (empty) list, ICAL.Event scans
// every VEVENT of the calendar for its exceptions: quadratic in the feed's size.
const event = (vevent: ICAL.Component) => new ICAL.Event(vevent, { exceptions: [] });

export function eventsFromIcs(text: string, options: ExpandOptions): ParsedFeed {
  const parsed = ICAL.parse(text) as unknown[];
  // One VCALENDAR parses to one jCal array; several top-level components to an array of them.
  const jcal = Array.isArray(parsed[0]) ? parsed[0] : parsed;
  const root = new ICAL.Component(jcal as ConstructorParameters<typeof ICAL.Component>[0]);
  if (root.name !== 'vcalendar') throw new Error(`not an iCalendar feed: the top-level component is ${root.name.toUpperCase()}, not VCALENDAR`);

  const feedZones = new Map<string, ICAL.Timezone>();
  for (const vtimezone of root.getAllSubcomponents('vtimezone')) {
    const zone = new ICAL.Timezone(vtimezone);
    feedZones.set(zone.tzid, zone);
  }
  // ical.js looks a TZID up among the calendar's VTIMEZONEs each time it reads a time, scanning
  // every component when the zone is not there (feeds often name IANA zones without defining
  // them): quadratic in the feed's size. An empty VTIMEZONE per such TZID makes the lookup hit
  // its cache; the times themselves are resolved by `instant` below, through the IANA database.
  const undefinedZones = new Set<string>();
  for (const component of root.jCal[2] as [string, [string, Record<string, unknown>, ...unknown[]][]][]) {
    if (component[0] !== 'vevent') continue;
    for (const [, params] of component[1]) if (typeof params.tzid === 'string' && !feedZones.has(params.tzid)) undefinedZones.add(params.tzid);
  }
  for (const tzid of undefinedZones) root.addSubcomponent(new ICAL.Component(['vtimezone', [['tzid', {}, 'text', tzid]], []]));

  const instant: Instant = (time, tzid) => {
    const parts = { year: time.year, month: time.month, day: time.day, hour: time.hour, minute: time.minute, second: time.second };
    if (time.isDate) return DateTime.fromObject({ year: time.year, month: time.month, day: time.day }, { zone: options.defaultZone }).toJSDate();
    if (time.zone === ICAL.Timezone.utcTimezone) return new Date(Date.UTC(time.year, time.month - 1, time.day, time.hour, time.minute, time.second));
    if (!tzid) return DateTime.fromObject(parts, { zone: options.defaultZone }).toJSDate();
    const local = DateTime.fromObject(parts, { zone: tzid });
    if (local.isValid) return local.toJSDate();
    const feedZone = feedZones.get(tzid);
    if (!feedZone) throw new Error(`unknown time zone "${tzid}": neither an IANA zone nor a VTIMEZONE of the feed`);
    const zoned = time.clone();
    zoned.zone = feedZone;
    return new Date(zoned.toUnixTime() * 1000);
  };

  const skipped: SkippedEvent[] = [];
  const uids = new Set<string>();
  const masters = new Map<string, ICAL.Component>();
  const exceptions = new Map<string, ICAL.Component[]>();
  for (const vevent of root.getAllSubcomponents('vevent')) {
    const uid = vevent.getFirstPropertyValue('uid');
    if (typeof uid !== 'string' || uid === '') {
      skipped.push({ uid: null, reason: `a VEVENT has no UID (DTSTART ${String(vevent.getFirstPropertyValue('dtstart'))}, SUMMARY ${JSON.stringify(vevent.getFirstPropertyValue('summary') ?? '')})` });
      continue;
    }
    uids.add(uid);
    if (vevent.hasProperty('recurrence-id')) {
      const list = exceptions.get(uid) ?? [];
      list.push(vevent);
      exceptions.set(uid, list);
    } else {
      masters.set(uid, vevent);
    }
  }

  const rows = new Map<string, EventRow>();
  /** The rows of one UID, or none and a SkippedEvent when any of them cannot be made. */
  const rowsOf = (uid: string, make: (add: (row: EventRow) => void) => void) => {
    const uidRows: EventRow[] = [];
    try {
      make((row) => uidRows.push(row));
    } catch (err) {
      skipped.push({ uid, reason: err instanceof Error ? err.message : String(err) });
      return;
    }
    for (const row of uidRows) rows.set(`${row.uid}\u0000${row.recurrenceId?.getTime() ?? ''}`, row);
  };
  let truncated = 0;
  for (const [uid, vevent] of masters) rowsOf(uid, (add) => {
    // Taken first: skipped or not, the series' overrides are not orphans.
    const own = exceptions.get(uid) ?? [];
    exceptions.delete(uid);
    const master = event(vevent);
    const base = rowOf(uid, vevent, master, instant);
    // The rule as the feed wrote it, stored with each occurrence: read before UNTIL is aligned.
    const rule = vevent.getFirstPropertyValue('rrule');
    const rrule = rule ? String(rule) : null;
    alignToStart(vevent, instant, (tzid) => feedZones.has(tzid), options.defaultZone);
    const overrides = new Map<number, ICAL.Component>();
    for (const exception of own) overrides.set(recurrenceInstant(exception, instant), exception);
    if (!master.isRecurring()) {
      add(base);
      return;
    }
    const lengthMs = base.endsAt ? base.endsAt.getTime() - base.startsAt.getTime() : 0;
    const startTzid = tzidOf(vevent, 'dtstart');
    // An all-day occurrence lasts whole days of its zone, 23 or 25 hours on a DST change: its end
    // is counted in days from its own date, not a fixed number of milliseconds from its start.
    const endOf = (occurrence: ICAL.Time, start: Date): Date | null => {
      if (!base.endsAt) return null;
      if (!occurrence.isDate) return new Date(start.getTime() + lengthMs);
      const end = occurrence.clone();
      end.addDuration(master.duration);
      return instant(end, startTzid);
    };
    const iterator = master.iterator();
    let seen = 0;
    for (let next = iterator.next(); next; next = iterator.next()) {
      const start = instant(next, startTzid);
      if (start > options.to) break;
      if (++seen > options.maxOccurrences) {
        // Not expanded to the end of the window (or not even to its start): what is stored of
        // the series is kept, not deleted as gone from the feed.
        truncated++;
        skipped.push({ uid, reason: `recurring event ${uid} has more than ${options.maxOccurrences} occurrences up to ${start.toISOString()}: expanded no further` });
        break;
      }
      const override = overrides.get(start.getTime());
      if (override) {
        overrides.delete(start.getTime());
        const row = rowOf(uid, override, event(override), instant);
        if (row.startsAt <= options.to && (row.endsAt ?? row.startsAt) >= options.from) add({ ...row, recurrenceId: start, rrule });
        continue;
      }
      const endsAt = endOf(next, start);
      if ((endsAt ?? start).getTime() < options.from.getTime()) continue;
      add({ ...base, recurrenceId: start, startsAt: start, endsAt, rrule });
    }
    // Overrides that moved an occurrence from outside the window into it, or name one the rule lacks.
    for (const [recurrence, override] of overrides) {
      const row = rowOf(uid, override, event(override), instant);
      if (row.startsAt <= options.to && (row.endsAt ?? row.startsAt) >= options.from) add({ ...row, recurrenceId: new Date(recurrence), rrule });
    }
  });
  // Overridden occurrences whose series is not in the feed: kept as they are.
  for (const [uid, list] of exceptions) rowsOf(uid, (add) => {
    for (const vevent of list) add({ ...rowOf(uid, vevent, event(vevent), instant), recurrenceId: new Date(recurrenceInstant(vevent, instant)) });
  });
  return { rows: [...rows.values()], uids: [...uids], truncated, skipped };
}

/**
 * Rewrites the RDATE and EXDATE times and the UNTIL of a series into the frame of its DTSTART,
 * so that ical.js, which compares them with the occurrences it makes from DTSTART, compares like
 * with like. RFC 5545 has UNTIL in UTC when DTSTART names a zone, and EXDATEs may name any zone;
 * ical.js converts between frames only through zones it knows (UTC and the feed's VTIMEZONEs),
 * and takes an IANA zone the feed names without defining it, and floating times, for UTC: the
 * excluded occurrence came back, and the last one before UNTIL could be dropped. Each foreign
 * time is resolved to its instant (IANA or the feed's zone, as for the rows), then written in
 * UTC when ical.js knows DTSTART's zone, else as DTSTART's wall-clock time in that zone.
 */
function alignToStart(vevent: ICAL.Component, instant: Instant, definedInFeed: (tzid: string) => boolean, defaultZone: string): void {
  const dtstart = vevent.getFirstPropertyValue('dtstart');
  if (!(dtstart instanceof ICAL.Time) || dtstart.isDate) return;
  const startTzid = tzidOf(vevent, 'dtstart');
  const isUtc = (t: ICAL.Time) => t.zone === ICAL.Timezone.utcTimezone;
  const startIsUtc = isUtc(dtstart);
  // ical.js converts correctly into a UTC DTSTART or one in a zone the feed defines.
  const icalKnowsStart = startIsUtc || (startTzid !== null && definedInFeed(startTzid));
  const startZone = startIsUtc ? 'UTC' : (startTzid ?? defaultZone);
  const knownZone = (tzid: string) => definedInFeed(tzid) || DateTime.local({ zone: tzid }).isValid;
  type WallClock = Pick<ICAL.Time, 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second'>;
  const wallClockOfStart = (t: WallClock) =>
    new ICAL.Time({ year: t.year, month: t.month, day: t.day, hour: t.hour, minute: t.minute, second: t.second, isDate: false }, dtstart.zone);
  const inStartFrame = (at: Date): ICAL.Time =>
    icalKnowsStart ? ICAL.Time.fromJSDate(at, true) : wallClockOfStart(DateTime.fromJSDate(at, { zone: startZone }));
  const aligned = (time: ICAL.Time, tzid: string | null): ICAL.Time => {
    if (time.isDate) return time;
    // A zone nobody knows: the time is left as ical.js reads it rather than losing the event.
    if (tzid !== null && tzid !== startTzid && !knownZone(tzid)) return time;
    if (isUtc(time)) return startIsUtc ? time : inStartFrame(instant(time, null));
    if (tzid !== null) return tzid === startTzid ? time : inStartFrame(instant(time, tzid));
    // A floating time beside a zoned DTSTART is taken as written in DTSTART's zone (RFC 5545 asks
    // for the same form as DTSTART); beside a UTC one, as in the owner's zone, like floating times.
    if (startIsUtc) return inStartFrame(instant(time, null));
    return startTzid === null ? time : wallClockOfStart(time);
  };
  for (const name of ['exdate', 'rdate']) {
    for (const prop of vevent.getAllProperties(name)) {
      const tzid = prop.getParameter('tzid');
      const values = prop.getValues();
      // RDATE periods (VALUE=PERIOD) are left as they are.
      if (!values.every((v) => v instanceof ICAL.Time)) continue;
      prop.setValues(values.map((v: ICAL.Time) => aligned(v, typeof tzid === 'string' ? tzid : null)));
    }
  }
  for (const rrule of vevent.getAllProperties('rrule')) {
    const recur = rrule.getFirstValue() as ICAL.Recur;
    // A floating UNTIL is read in DTSTART's own frame, as RFC 5545 has it for a floating DTSTART.
    if (recur.until && !recur.until.isDate && isUtc(recur.until)) recur.until = aligned(recur.until, null);
  }
}

function tzidOf(vevent: ICAL.Component, property: string): string | null {
  const tzid = vevent.getFirstProperty(property)?.getParameter('tzid');
  return typeof tzid === 'string' ? tzid : null;
}

function recurrenceInstant(vevent: ICAL.Component, instant: Instant): number {
  const value = vevent.getFirstPropertyValue('recurrence-id') as ICAL.Time;
  return instant(value, tzidOf(vevent, 'recurrence-id')).getTime();
}

const STATUSES = { TENTATIVE: 'tentative', CONFIRMED: 'confirmed', CANCELLED: 'cancelled' } as const;

function rowOf(uid: string, vevent: ICAL.Component, event: ICAL.Event, instant: Instant): EventRow {
  const dtstart = vevent.getFirstPropertyValue('dtstart');
  if (!(dtstart instanceof ICAL.Time)) throw new Error(`event ${uid} has no DTSTART`);
  const startsAt = instant(dtstart, tzidOf(vevent, 'dtstart'));
  const hasEnd = vevent.hasProperty('dtend') || vevent.hasProperty('duration');
  const endsAt = hasEnd ? instant(event.endDate, tzidOf(vevent, vevent.hasProperty('dtend') ? 'dtend' : 'dtstart')) : dtstart.isDate ? instant(event.endDate, null) : null;
  if (endsAt && endsAt < startsAt) throw new Error(`event ${uid} ends (${endsAt.toISOString()}) before it starts (${startsAt.toISOString()})`);
  const status = String(vevent.getFirstPropertyValue('status') ?? 'CONFIRMED').toUpperCase();
  return {
    uid,
    recurrenceId: null,
    summary: event.summary ?? '',
    description: event.description ?? null,
    location: event.location ?? null,
    startsAt,
    endsAt,
    allDay: dtstart.isDate,
    rrule: null,
    status: STATUSES[status as keyof typeof STATUSES] ?? 'confirmed',
    sequence: event.sequence ?? 0,
  };
}
