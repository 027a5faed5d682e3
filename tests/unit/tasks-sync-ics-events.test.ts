// The feed → rows conversion: time zones (IANA, the feed's own VTIMEZONE for other names,
// floating), windowed recurrence expansion, the parser's messages for feeds refused whole, and
// the events skipped (with their reasons) in a feed that parses.
import { describe, expect, it } from 'vitest';
import { eventsFromIcs } from '../../task-runner/tasks/sync/ics-events.ts';
import { countOverlappingPairs } from '../../task-runner/tasks/sync/overlaps.ts';

const wide = { defaultZone: 'Europe/Berlin', from: new Date('2000-01-01'), to: new Date('2100-01-01'), maxOccurrences: 10_000 };
const cal = (...lines: string[]) => ['BEGIN:VCALENDAR', 'VERSION:2.0', ...lines, 'END:VCALENDAR'].join('\r\n');
/** Outlook's name for Central European time, defined by the feed: no IANA zone has that name. */
const WEST_EUROPE = [
  'BEGIN:VTIMEZONE', 'TZID:W. Europe Standard Time',
  'BEGIN:STANDARD', 'DTSTART:16010101T030000', 'TZOFFSETFROM:+0200', 'TZOFFSETTO:+0100', 'RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10', 'END:STANDARD',
  'BEGIN:DAYLIGHT', 'DTSTART:16010101T020000', 'TZOFFSETFROM:+0100', 'TZOFFSETTO:+0200', 'RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3', 'END:DAYLIGHT',
  'END:VTIMEZONE',
];

describe('eventsFromIcs', () => {
  it("resolves a non-IANA TZID through the feed's VTIMEZONE", () => {
    const feed = cal(
      ...WEST_EUROPE,
      'BEGIN:VEVENT', 'UID:o1', 'DTSTAMP:20270101T000000Z', 'DTSTART;TZID=W. Europe Standard Time:20270715T100000', 'DTEND;TZID=W. Europe Standard Time:20270715T110000', 'SUMMARY:Outlook', 'END:VEVENT',
    );
    const [row] = eventsFromIcs(feed, wide).rows;
    expect(row).toMatchObject({ uid: 'o1', startsAt: new Date('2027-07-15T08:00:00Z'), endsAt: new Date('2027-07-15T09:00:00Z') });
  });

  const good = ['BEGIN:VEVENT', 'UID:good', 'DTSTAMP:20270101T000000Z', 'DTSTART:20270102T090000Z', 'DTEND:20270102T100000Z', 'SUMMARY:Fine', 'END:VEVENT'];
  it.each([
    ['a TZID known to neither IANA nor the feed', ['BEGIN:VEVENT', 'UID:x', 'DTSTAMP:20270101T000000Z', 'DTSTART;TZID=Mars/Olympus:20270715T100000', 'END:VEVENT'], 'x', 'unknown time zone "Mars/Olympus": neither an IANA zone nor a VTIMEZONE of the feed'],
    ['an event without UID', ['BEGIN:VEVENT', 'DTSTAMP:20270101T000000Z', 'DTSTART:20270101T090000Z', 'SUMMARY:Anon', 'END:VEVENT'], null, 'a VEVENT has no UID (DTSTART 2027-01-01T09:00:00Z, SUMMARY "Anon")'],
    ['an end before the start', ['BEGIN:VEVENT', 'UID:e', 'DTSTAMP:20270101T000000Z', 'DTSTART:20270101T090000Z', 'DTEND:20270101T080000Z', 'END:VEVENT'], 'e', 'event e ends (2027-01-01T08:00:00.000Z) before it starts (2027-01-01T09:00:00.000Z)'],
    ['an event without DTSTART', ['BEGIN:VEVENT', 'UID:d', 'DTSTAMP:20270101T000000Z', 'SUMMARY:When?', 'END:VEVENT'], 'd', 'event d has no DTSTART'],
  ])('skips %s with its reason, and keeps the other events', (_what, bad, uid, reason) => {
    const parsed = eventsFromIcs(cal(...bad, ...good), wide);
    expect(parsed.skipped).toEqual([{ uid, reason }]);
    expect(parsed.rows.map((r) => r.uid)).toEqual(['good']);
  });

  it('ends each all-day occurrence at midnight of its zone, also across a DST change', () => {
    // Weekly on Sundays; 2025-03-30 and 2025-10-26 are the days Europe/Berlin changes its clocks.
    const feed = cal('BEGIN:VEVENT', 'UID:sunday', 'DTSTAMP:20250101T000000Z', 'DTSTART;VALUE=DATE:20250323', 'DTEND;VALUE=DATE:20250324', 'RRULE:FREQ=WEEKLY;COUNT=33', 'SUMMARY:Sunday', 'END:VEVENT');
    const rows = eventsFromIcs(feed, wide).rows;
    expect(rows.find((r) => r.startsAt.getTime() === Date.parse('2025-03-30T00:00:00+01:00'))).toMatchObject({ endsAt: new Date('2025-03-30T22:00:00Z') }); // 23 hours
    expect(rows.find((r) => r.startsAt.getTime() === Date.parse('2025-10-26T00:00:00+02:00'))).toMatchObject({ endsAt: new Date('2025-10-26T23:00:00Z') }); // 25 hours
    expect(rows.find((r) => r.startsAt.getTime() === Date.parse('2025-03-23T00:00:00+01:00'))).toMatchObject({ endsAt: new Date('2025-03-23T23:00:00Z') });
  });

  it('skips a series whole when one of its overrides is bad, and never takes its overrides for orphans', () => {
    const feed = cal(
      'BEGIN:VEVENT', 'UID:weekly', 'DTSTAMP:20270101T000000Z', 'DTSTART:20270104T090000Z', 'DTEND:20270104T100000Z', 'RRULE:FREQ=WEEKLY;COUNT=4', 'END:VEVENT',
      'BEGIN:VEVENT', 'UID:weekly', 'DTSTAMP:20270101T000000Z', 'RECURRENCE-ID:20270111T090000Z', 'DTSTART:20270111T120000Z', 'DTEND:20270111T110000Z', 'END:VEVENT',
      'BEGIN:VEVENT', 'UID:broken', 'DTSTAMP:20270101T000000Z', 'DTSTART:20270104T090000Z', 'DTEND:20270104T080000Z', 'RRULE:FREQ=DAILY;COUNT=2', 'END:VEVENT',
      'BEGIN:VEVENT', 'UID:broken', 'DTSTAMP:20270101T000000Z', 'RECURRENCE-ID:20270105T090000Z', 'DTSTART:20270105T100000Z', 'DTEND:20270105T110000Z', 'END:VEVENT',
      ...good,
    );
    const parsed = eventsFromIcs(feed, wide);
    expect(parsed.skipped.map((e) => e.uid)).toEqual(['weekly', 'broken']);
    expect(parsed.skipped[0]!.reason).toBe('event weekly ends (2027-01-11T11:00:00.000Z) before it starts (2027-01-11T12:00:00.000Z)');
    expect(parsed.rows.map((r) => r.uid)).toEqual(['good']);
  });

  it('lists every UID of the feed once, whatever the window: also events with no occurrence in it, and skipped ones', () => {
    const feed = cal(
      // Every other year from 2027, an occurrence overridden: none in 2028.
      'BEGIN:VEVENT', 'UID:biennial', 'DTSTAMP:20270101T000000Z', 'DTSTART:20270301T090000Z', 'DTEND:20270301T100000Z', 'RRULE:FREQ=YEARLY;INTERVAL=2', 'END:VEVENT',
      'BEGIN:VEVENT', 'UID:biennial', 'DTSTAMP:20270101T000000Z', 'RECURRENCE-ID:20290301T090000Z', 'DTSTART:20290302T090000Z', 'DTEND:20290302T100000Z', 'END:VEVENT',
      'BEGIN:VEVENT', 'UID:bad', 'DTSTAMP:20270101T000000Z', 'DTSTART:20280101T090000Z', 'DTEND:20280101T080000Z', 'END:VEVENT',
      'BEGIN:VEVENT', 'DTSTAMP:20270101T000000Z', 'DTSTART:20280101T090000Z', 'SUMMARY:No UID', 'END:VEVENT',
      'BEGIN:VEVENT', 'UID:orphan', 'DTSTAMP:20270101T000000Z', 'RECURRENCE-ID:20260101T090000Z', 'DTSTART:20260101T090000Z', 'END:VEVENT',
      'BEGIN:VEVENT', 'UID:in-2028', 'DTSTAMP:20270101T000000Z', 'DTSTART:20280601T090000Z', 'DTEND:20280601T100000Z', 'END:VEVENT',
    );
    const parsed = eventsFromIcs(feed, { ...wide, from: new Date('2028-01-01T00:00:00Z'), to: new Date('2028-12-31T23:59:59Z') });
    expect(parsed.rows.map((r) => r.uid)).toEqual(['in-2028', 'orphan']);
    expect(parsed.skipped.map((e) => e.uid)).toEqual([null, 'bad']);
    expect(parsed.uids).toEqual(['biennial', 'bad', 'orphan', 'in-2028']);
  });

  it('expands a rule only inside the window, and stops an endless rule at maxOccurrences', () => {
    const feed = cal('BEGIN:VEVENT', 'UID:daily', 'DTSTAMP:20270101T000000Z', 'DTSTART:20270101T090000Z', 'DTEND:20270101T100000Z', 'RRULE:FREQ=DAILY', 'END:VEVENT');
    const windowed = eventsFromIcs(feed, { ...wide, from: new Date('2027-02-01T00:00:00Z'), to: new Date('2027-02-05T23:59:59Z') });
    expect(windowed.rows.map((r) => r.startsAt.toISOString())).toEqual(['01', '02', '03', '04', '05'].map((d) => `2027-02-${d}T09:00:00.000Z`));
    expect(windowed.rows.every((r) => r.recurrenceId?.getTime() === r.startsAt.getTime() && r.rrule === 'FREQ=DAILY')).toBe(true);
    const cut = eventsFromIcs(feed, { ...wide, maxOccurrences: 50 });
    expect(cut.truncated).toBe(1);
    // Skipped as well: the caller keeps what it stored of the series rather than deleting it.
    expect(cut.skipped).toEqual([{ uid: 'daily', reason: 'recurring event daily has more than 50 occurrences up to 2027-02-20T09:00:00.000Z: expanded no further' }]);
  });

  it.each([
    ['a line without a colon', cal('BEGIN:VEVENT', 'UID:x', 'SUMMARY broken', 'END:VEVENT'), 'invalid line (no token ";" or ":") "SUMMARY broken"'],
    ['an unterminated component', 'BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VCALENDAR', 'invalid ical body. component began but did not end'],
    ['an HTML page', '<html><body>Sign in</body></html>', 'invalid line (no token ";" or ":")'],
    ['a calendar that is not one', 'BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20270101T090000Z\r\nEND:VEVENT', 'not an iCalendar feed: the top-level component is VEVENT, not VCALENDAR'],
  ])('refuses the whole feed on %s, with the message', (_what, feed, message) => {
    expect(() => eventsFromIcs(feed, wide)).toThrow(message);
  });

  // RFC 5545 has EXDATE and UNTIL in UTC (or in another zone) while DTSTART names its own; a feed
  // that names an IANA zone without a VTIMEZONE leaves ical.js unable to convert, so the
  // comparison must be made on instants. 09:00 Berlin is 08:00Z in winter, 07:00Z in summer.
  const berlinDaily = (...extra: string[]) =>
    cal('BEGIN:VEVENT', 'UID:daily', 'DTSTAMP:20270101T000000Z', 'DTSTART;TZID=Europe/Berlin:20270104T090000', 'DTEND;TZID=Europe/Berlin:20270104T100000', ...extra, 'END:VEVENT');
  const starts = (feed: string, zone = 'Europe/Berlin') => eventsFromIcs(feed, { ...wide, defaultZone: zone }).rows.map((r) => r.startsAt.toISOString()).sort();

  it('leaves out an occurrence named by a UTC EXDATE when DTSTART has an IANA TZID the feed does not define', () => {
    expect(starts(berlinDaily('RRULE:FREQ=DAILY;COUNT=3', 'EXDATE:20270105T080000Z'))).toEqual(['2027-01-04T08:00:00.000Z', '2027-01-06T08:00:00.000Z']);
  });

  it('leaves out an occurrence named by an EXDATE in another zone than DTSTART, undefined too', () => {
    expect(starts(berlinDaily('RRULE:FREQ=DAILY;COUNT=3', 'EXDATE;TZID=America/New_York:20270105T030000'))).toEqual(['2027-01-04T08:00:00.000Z', '2027-01-06T08:00:00.000Z']);
  });

  it('keeps the last occurrence of a rule whose UTC UNTIL is exactly its start, across a DST change', () => {
    // 2027-03-28: Berlin moves to summer time; the 29th at 09:00 is 07:00Z.
    const feed = cal('BEGIN:VEVENT', 'UID:d', 'DTSTAMP:20270101T000000Z', 'DTSTART;TZID=Europe/Berlin:20270327T090000', 'RRULE:FREQ=DAILY;UNTIL=20270329T070000Z', 'END:VEVENT');
    expect(starts(feed)).toEqual(['2027-03-27T08:00:00.000Z', '2027-03-28T07:00:00.000Z', '2027-03-29T07:00:00.000Z']);
  });

  it("reads a floating EXDATE beside a zoned DTSTART in DTSTART's zone, not the owner's", () => {
    expect(starts(berlinDaily('RRULE:FREQ=DAILY;COUNT=3', 'EXDATE:20270105T090000'), 'America/New_York')).toEqual(['2027-01-04T08:00:00.000Z', '2027-01-06T08:00:00.000Z']);
  });

  it('stores the rule as the feed wrote it, its UTC UNTIL too', () => {
    const feed = cal('BEGIN:VEVENT', 'UID:d', 'DTSTAMP:20270101T000000Z', 'DTSTART;TZID=Europe/Berlin:20270327T090000', 'RRULE:FREQ=DAILY;UNTIL=20270329T070000Z', 'END:VEVENT');
    expect(new Set(eventsFromIcs(feed, wide).rows.map((r) => r.rrule))).toEqual(new Set(['FREQ=DAILY;UNTIL=20270329T070000Z']));
  });

  it('keeps an event whose EXDATE names a zone nobody knows, that EXDATE read as ical.js reads it', () => {
    const rows = eventsFromIcs(berlinDaily('RRULE:FREQ=DAILY;COUNT=2', 'EXDATE;TZID=Eastern Standard Time:20270105T030000'), wide);
    expect(rows.skipped).toEqual([]);
    expect(rows.rows.map((r) => r.startsAt.toISOString()).sort()).toEqual(['2027-01-04T08:00:00.000Z', '2027-01-05T08:00:00.000Z']);
  });

  it('applies a UTC EXDATE and UNTIL to a floating DTSTART in the owner\'s zone', () => {
    const feed = cal('BEGIN:VEVENT', 'UID:f', 'DTSTAMP:20270101T000000Z', 'DTSTART:20270104T090000', 'RRULE:FREQ=DAILY;UNTIL=20270107T080000Z', 'EXDATE:20270105T080000Z', 'END:VEVENT');
    expect(starts(feed)).toEqual(['2027-01-04T08:00:00.000Z', '2027-01-06T08:00:00.000Z', '2027-01-07T08:00:00.000Z']);
  });

  it('still applies EXDATE and UNTIL as ical.js does when the feed defines the zone', () => {
    const feed = cal(
      ...WEST_EUROPE,
      'BEGIN:VEVENT', 'UID:w', 'DTSTAMP:20270101T000000Z', 'DTSTART;TZID=W. Europe Standard Time:20270327T090000', 'RRULE:FREQ=DAILY;UNTIL=20270329T070000Z', 'EXDATE:20270328T070000Z', 'END:VEVENT',
    );
    expect(starts(feed)).toEqual(['2027-03-27T08:00:00.000Z', '2027-03-29T07:00:00.000Z']);
  });

});

describe('countOverlappingPairs', () => {
  it('counts each overlapping pair once; touching intervals do not overlap', () => {
    expect(countOverlappingPairs([])).toBe(0);
    expect(countOverlappingPairs([{ start: 0, end: 10 }, { start: 10, end: 20 }])).toBe(0);
    expect(countOverlappingPairs([{ start: 0, end: 10 }, { start: 5, end: 20 }, { start: 6, end: 7 }, { start: 15, end: 30 }])).toBe(4);
    // n identical intervals: n(n-1)/2 pairs.
    expect(countOverlappingPairs(Array.from({ length: 50 }, () => ({ start: 1, end: 2 })))).toBe(1225);
  });
});
