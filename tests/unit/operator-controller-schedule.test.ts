import { describe, expect, it } from 'vitest';
import { CronSyntaxError, parseCron } from '../../operator/controller/cron.ts';
import { compileSchedule, InvalidScheduleError, mostRecentScheduleTime, nextScheduleTime, ScheduleIntervals, scheduleIntervalSeconds } from '../../operator/controller/schedule.ts';
import { UnknownTimeZoneError, Zone } from '../../operator/controller/zoned-time.ts';

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number | undefined) => (t === undefined ? '' : new Date(t).toISOString().replace('.000Z', 'Z'));

function nextN(schedule: string, timeZone: string, from: string, n: number): string[] {
  const s = compileSchedule(schedule, timeZone || undefined);
  const out: string[] = [];
  let t: number | undefined = ms(from);
  for (let i = 0; i < n; i++) {
    t = s.next(t);
    out.push(iso(t));
    if (t === undefined) break;
  }
  return out;
}

// Expected values are the output of robfig/cron v3.0.1 (the library the CronJob controller of
// Kubernetes 1.34 uses): cron.ParseStandard("TZ=<zone> <schedule>") and four calls of Next,
// run with Go against this table. `@every` is left out: the BackgroundTask schema refuses it.
const ROBFIG_VECTORS: { schedule: string; timeZone: string; from: string; next?: string[]; error?: string }[] = [
  { schedule: "30 2 * * *", timeZone: "Europe/Berlin", from: "2026-03-27T12:00:00Z", next: ["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z", "2026-04-01T00:30:00Z"] },
  { schedule: "30 2 * * *", timeZone: "Europe/Berlin", from: "2026-10-23T12:00:00Z", next: ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"] },
  { schedule: "0 2 * * *", timeZone: "Europe/Berlin", from: "2026-03-28T12:00:00Z", next: ["2026-03-30T00:00:00Z", "2026-03-31T00:00:00Z", "2026-04-01T00:00:00Z", "2026-04-02T00:00:00Z"] },
  { schedule: "0 3 * * *", timeZone: "Europe/Berlin", from: "2026-10-24T12:00:00Z", next: ["2026-10-25T02:00:00Z", "2026-10-26T02:00:00Z", "2026-10-27T02:00:00Z", "2026-10-28T02:00:00Z"] },
  { schedule: "*/30 * * * *", timeZone: "Europe/Berlin", from: "2026-03-29T00:15:00Z", next: ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:00:00Z"] },
  { schedule: "*/30 * * * *", timeZone: "Europe/Berlin", from: "2026-10-25T00:15:00Z", next: ["2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"] },
  { schedule: "30 1 * * *", timeZone: "America/New_York", from: "2026-10-31T12:00:00Z", next: ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z"] },
  { schedule: "30 2 * * *", timeZone: "America/New_York", from: "2026-03-07T12:00:00Z", next: ["2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z", "2026-03-11T06:30:00Z", "2026-03-12T06:30:00Z"] },
  { schedule: "0 0 * * *", timeZone: "America/Sao_Paulo", from: "2018-11-02T12:00:00Z", next: ["2018-11-03T03:00:00Z", "2018-11-05T02:00:00Z", "2018-11-06T02:00:00Z", "2018-11-07T02:00:00Z"] },
  { schedule: "0 0 * * *", timeZone: "America/Sao_Paulo", from: "2019-02-15T12:00:00Z", next: ["2019-02-16T02:00:00Z", "2019-02-17T03:00:00Z", "2019-02-18T03:00:00Z", "2019-02-19T03:00:00Z"] },
  { schedule: "0 2 * * *", timeZone: "Australia/Lord_Howe", from: "2026-10-02T00:00:00Z", next: ["2026-10-02T15:30:00Z", "2026-10-04T15:00:00Z", "2026-10-05T15:00:00Z", "2026-10-06T15:00:00Z"] },
  { schedule: "15 10 * * 1-5", timeZone: "", from: "2026-11-27T12:00:00Z", next: ["2026-11-30T10:15:00Z", "2026-12-01T10:15:00Z", "2026-12-02T10:15:00Z", "2026-12-03T10:15:00Z"] },
  { schedule: "0 0 31 * *", timeZone: "", from: "2026-01-31T00:00:00Z", next: ["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"] },
  { schedule: "0 0 29 2 *", timeZone: "", from: "2026-01-01T00:00:00Z", next: ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z", "2040-02-29T00:00:00Z"] },
  { schedule: "0 0 1,15 * 1", timeZone: "", from: "2026-06-01T00:00:00Z", next: ["2026-06-08T00:00:00Z", "2026-06-15T00:00:00Z", "2026-06-22T00:00:00Z", "2026-06-29T00:00:00Z"] },
  { schedule: "*/15 9-17 * * MON-FRI", timeZone: "Asia/Kolkata", from: "2026-11-27T11:50:00Z", next: ["2026-11-27T12:00:00Z", "2026-11-27T12:15:00Z", "2026-11-30T03:30:00Z", "2026-11-30T03:45:00Z"] },
  { schedule: "@weekly", timeZone: "", from: "2026-11-28T00:00:00Z", next: ["2026-11-29T00:00:00Z", "2026-12-06T00:00:00Z", "2026-12-13T00:00:00Z", "2026-12-20T00:00:00Z"] },
  { schedule: "@monthly", timeZone: "Pacific/Auckland", from: "2026-11-28T00:00:00Z", next: ["2026-11-30T11:00:00Z", "2026-12-31T11:00:00Z", "2027-01-31T11:00:00Z", "2027-02-28T11:00:00Z"] },
  { schedule: "@yearly", timeZone: "", from: "2026-11-28T00:00:00Z", next: ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z", "2030-01-01T00:00:00Z"] },
  { schedule: "@hourly", timeZone: "", from: "2026-11-28T10:59:59Z", next: ["2026-11-28T11:00:00Z", "2026-11-28T12:00:00Z", "2026-11-28T13:00:00Z", "2026-11-28T14:00:00Z"] },
  { schedule: "5/15 * * * *", timeZone: "", from: "2026-11-28T10:00:00Z", next: ["2026-11-28T10:05:00Z", "2026-11-28T10:20:00Z", "2026-11-28T10:35:00Z", "2026-11-28T10:50:00Z"] },
  { schedule: "0 12 ? * sun", timeZone: "", from: "2026-11-28T10:00:00Z", next: ["2026-11-29T12:00:00Z", "2026-12-06T12:00:00Z", "2026-12-13T12:00:00Z", "2026-12-20T12:00:00Z"] },
  { schedule: "0 0 30 2 *", timeZone: "", from: "2026-01-01T00:00:00Z", next: [""] },
  { schedule: "0 9 * jan,jul *", timeZone: "Europe/London", from: "2026-11-28T10:00:00Z", next: ["2027-01-01T09:00:00Z", "2027-01-02T09:00:00Z", "2027-01-03T09:00:00Z", "2027-01-04T09:00:00Z"] },
  { schedule: "59 23 * * *", timeZone: "", from: "2026-12-31T23:59:00Z", next: ["2027-01-01T23:59:00Z", "2027-01-02T23:59:00Z", "2027-01-03T23:59:00Z", "2027-01-04T23:59:00Z"] },
  { schedule: "0 */6 * * *", timeZone: "America/Los_Angeles", from: "2026-03-08T06:30:00Z", next: ["2026-03-08T08:00:00Z", "2026-03-08T13:00:00Z", "2026-03-08T19:00:00Z", "2026-03-09T01:00:00Z"] },
  { schedule: "0 1 * * *", timeZone: "America/Los_Angeles", from: "2026-11-01T06:00:00Z", next: ["2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z", "2026-11-02T09:00:00Z", "2026-11-03T09:00:00Z"] },
  { schedule: "0,30 0-3 * * *", timeZone: "Europe/Berlin", from: "2026-10-24T23:00:00Z", next: ["2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z"] },
  { schedule: "0 0 * * *", timeZone: "UTC", from: "2026-11-28T00:00:00.500Z", next: ["2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"] },
  { schedule: "1-5/2 3 * * *", timeZone: "", from: "2026-11-28T00:00:00Z", next: ["2026-11-28T03:01:00Z", "2026-11-28T03:03:00Z", "2026-11-28T03:05:00Z", "2026-11-29T03:01:00Z"] },
  { schedule: "0 0 * * 7", timeZone: "", from: "2026-11-28T00:00:00Z", error: "end of range (7) above maximum (6): 7" },
  { schedule: "61 * * * *", timeZone: "", from: "2026-11-28T00:00:00Z", error: "end of range (61) above maximum (59): 61" },
  { schedule: "0 0 * *", timeZone: "", from: "2026-11-28T00:00:00Z", error: "expected exactly 5 fields, found 4: [0 0 * *]" },
  { schedule: "5-2 * * * *", timeZone: "", from: "2026-11-28T00:00:00Z", error: "beginning of range (5) beyond end of range (2): 5-2" },
  { schedule: "*/0 * * * *", timeZone: "", from: "2026-11-28T00:00:00Z", error: "step of range should be a positive number: */0" },
  { schedule: "0 0 * foo *", timeZone: "", from: "2026-11-28T00:00:00Z", error: "failed to parse int from foo" },
];

describe('cron schedules match robfig/cron', () => {
  it.each(ROBFIG_VECTORS.filter((v) => v.next))('$schedule in "$timeZone" after $from', (v) => {
    expect(nextN(v.schedule, v.timeZone, v.from, v.next!.length)).toEqual(v.next);
  });

  it.each(ROBFIG_VECTORS.filter((v) => v.error))('refuses $schedule like robfig: $error', (v) => {
    expect(() => compileSchedule(v.schedule, v.timeZone || undefined)).toThrow(CronSyntaxError);
    expect(() => compileSchedule(v.schedule, v.timeZone || undefined)).toThrow(v.error!);
  });

  it('refuses @every, which CronJobs accept but BackgroundTasks do not', () => {
    expect(() => parseCron('@every 5m', Zone.load('UTC'))).toThrow('unrecognized descriptor');
  });
});

describe('daylight saving time, Europe/Berlin, 30 2 * * *', () => {
  const zone = Zone.load('Europe/Berlin');
  const pad = (n: number) => String(n).padStart(2, '0');
  /** `2026-03-28 02:30 +01:00`: the wall time in Berlin and its UTC offset. */
  const berlin = (t: string) => {
    const w = zone.wall(ms(t));
    return `${w.year}-${pad(w.month)}-${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)} +${pad(zone.offsetSeconds(ms(t)) / 3600)}:00`;
  };

  it('skips the spring-forward day: 02:30 does not exist on 2026-03-29', () => {
    const runs = nextN('30 2 * * *', 'Europe/Berlin', '2026-03-28T00:00:00Z', 3).map(berlin);
    expect(runs).toEqual(['2026-03-28 02:30 +01:00', '2026-03-30 02:30 +02:00', '2026-03-31 02:30 +02:00']);
  });

  it('runs twice on the fall-back day: 02:30 CEST and 02:30 CET (as robfig/cron does; cron-parser would run once)', () => {
    const runs = nextN('30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', 3).map(berlin);
    expect(runs).toEqual(['2026-10-25 02:30 +02:00', '2026-10-25 02:30 +01:00', '2026-10-26 02:30 +01:00']);
  });
});

describe('zones', () => {
  it('rejects an unknown time zone', () => {
    expect(() => compileSchedule('0 * * * *', 'Mars/Olympus_Mons')).toThrow(UnknownTimeZoneError);
  });

  it('compiles each schedule in each zone once: tasks sharing them share the result', () => {
    const daily = compileSchedule('0 4 * * *', 'Europe/Berlin');
    expect(compileSchedule('0 4 * * *', 'Europe/Berlin')).toBe(daily);
    expect(compileSchedule('0 4 * * *', 'Europe/Paris')).not.toBe(daily);
    expect(compileSchedule('0 4 * * *', 'Europe/Paris').zone).not.toBe(daily.zone);
    expect(compileSchedule('0 5 * * *', 'Europe/Berlin').zone).toBe(daily.zone);
    // A rejected one is rejected every time, not remembered as something else.
    expect(() => compileSchedule('0 4 * *', 'Europe/Berlin')).toThrow(CronSyntaxError);
    expect(() => compileSchedule('0 4 * *', 'Europe/Berlin')).toThrow(CronSyntaxError);
  });

  it('defaults to UTC', () => {
    expect(nextN('0 4 * * *', '', '2026-11-28T05:00:00Z', 1)).toEqual(['2026-11-29T04:00:00Z']);
  });

  it('computes UTC without Intl, to the same wall times Intl gives (year 1 to 9999, both eras of the proleptic calendar)', () => {
    const utc = Zone.load('UTC');
    const viaIntl = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', era: 'short' });
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const from = Date.UTC(1, 0, 1) - 86_400_000 * 400; // a year and more before year 1: BC dates too
    const to = Date.UTC(9999, 11, 31);
    for (let i = 0; i < 2_000; i++) {
      const ms = Math.floor(from + random() * (to - from));
      const parts = Object.fromEntries(viaIntl.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
      const year = parts.era === 'BC' || parts.era === 'B' ? 1 - Number(parts.year) : Number(parts.year);
      const wall = utc.wall(ms);
      expect({ year: wall.year, month: wall.month, day: wall.day, hour: wall.hour, minute: wall.minute, second: wall.second }, new Date(ms).toISOString()).toEqual({
        year,
        month: Number(parts.month),
        day: Number(parts.day),
        hour: Number(parts.hour),
        minute: Number(parts.minute),
        second: Number(parts.second),
      });
      expect(wall.weekday).toBe(new Date(ms).getUTCDay());
      expect(utc.offsetSeconds(ms)).toBe(0);
    }
  });

  it('resolves wall times like Go time.Date: a skipped time moves forward, a repeated one is the later', () => {
    const berlin = Zone.load('Europe/Berlin');
    expect(iso(berlin.date(2026, 3, 29, 2, 30, 0))).toBe('2026-03-29T01:30:00Z'); // 03:30 CEST
    expect(iso(berlin.date(2026, 10, 25, 2, 30, 0))).toBe('2026-10-25T01:30:00Z'); // 02:30 CET
    expect(iso(berlin.date(2026, 12, 32, 0, 0, 0))).toBe('2026-12-31T23:00:00Z'); // Jan 1st 00:00 CET
  });
});

describe('mostRecentScheduleTime (utils.go)', () => {
  const hourly = compileSchedule('0 * * * *', undefined);
  const everyMinute = compileSchedule('* * * * *', undefined);
  const cases: {
    name: string;
    schedule?: typeof hourly;
    earliest: string;
    now: string;
    deadline?: number;
    mostRecent?: string;
    missed: string;
  }[] = [
    { name: 'nothing due yet', earliest: '2026-11-28T10:00:00Z', now: '2026-11-28T10:30:00Z', missed: 'none' },
    { name: 'one due, exactly now', earliest: '2026-11-28T10:00:00Z', now: '2026-11-28T11:00:00Z', mostRecent: '2026-11-28T11:00:00Z', missed: 'none' },
    { name: 'several missed: the latest counts', earliest: '2026-11-28T10:00:00Z', now: '2026-11-28T15:30:00Z', mostRecent: '2026-11-28T15:00:00Z', missed: 'few' },
    {
      name: 'the starting deadline hides old misses',
      earliest: '2026-11-28T10:00:00Z',
      now: '2026-11-28T15:30:00Z',
      deadline: 600,
      missed: 'none',
    },
    {
      name: 'a deadline long enough keeps the latest',
      earliest: '2026-11-28T10:00:00Z',
      now: '2026-11-28T15:30:00Z',
      deadline: 3600,
      mostRecent: '2026-11-28T15:00:00Z',
      missed: 'none',
    },
    { name: 'more than 100 missed', schedule: everyMinute, earliest: '2026-11-28T10:00:00Z', now: '2026-11-28T12:00:30Z', mostRecent: '2026-11-28T12:00:00Z', missed: 'many' },
  ];
  it.each(cases)('$name', (c) => {
    const r = mostRecentScheduleTime(c.schedule ?? hourly, { earliest: ms(c.earliest), startingDeadlineSeconds: c.deadline }, ms(c.now));
    expect({ mostRecent: r.mostRecent === undefined ? undefined : iso(r.mostRecent), missed: r.missed }).toEqual({ mostRecent: c.mostRecent, missed: c.missed });
  });

  it('refuses a schedule that never fires', () => {
    expect(() => mostRecentScheduleTime(compileSchedule('0 0 30 2 *', undefined), { earliest: 0 }, ms('2026-01-01T00:00:00Z'))).toThrow(InvalidScheduleError);
  });
});

describe('nextScheduleTime', () => {
  const hourly = compileSchedule('0 * * * *', undefined);
  it.each([
    { name: 'the next slot after the last schedule', earliest: '2026-11-28T10:00:00Z', now: '2026-11-28T10:30:00Z', next: '2026-11-28T11:00:00Z' },
    { name: 'after missed slots: the one after the most recent', earliest: '2026-11-28T10:00:00Z', now: '2026-11-28T15:30:00Z', next: '2026-11-28T16:00:00Z' },
    { name: 'a slot due now: the one after it', earliest: '2026-11-28T10:00:00Z', now: '2026-11-28T11:00:00Z', next: '2026-11-28T12:00:00Z' },
  ])('$name', (c) => {
    expect(iso(nextScheduleTime(hourly, ms(c.earliest), ms(c.now)))).toBe(c.next);
  });

  it('falls back to now for a schedule the controller refuses, and finds nothing for one that never fires', () => {
    expect(nextScheduleTime(compileSchedule('0 0 30 2 *', undefined), 0, ms('2026-01-01T00:00:00Z'))).toBeUndefined();
  });
});

describe('scheduleIntervalSeconds', () => {
  const HOUR = 3600;
  const DAY = 24 * HOUR;
  /** The longest gap between consecutive runs, by walking every run over the same window. */
  function bruteForce(schedule: string, timeZone: string, from: string, days = 35): number {
    const s = compileSchedule(schedule, timeZone);
    const first = s.next(ms(from))!;
    let longest = 0;
    for (let t = first, n = s.next(t); n !== undefined; t = n, n = s.next(t)) {
      longest = Math.max(longest, n - t);
      if (n > first + days * DAY * 1000) break;
    }
    return longest / 1000;
  }

  it.each([
    { schedule: '* * * * *', timeZone: 'Etc/UTC', expected: 60 },
    { schedule: '*/5 * * * *', timeZone: 'America/New_York', expected: 300 },
    { schedule: '*/30 * * * *', timeZone: 'Etc/UTC', expected: 1800 },
    { schedule: '0 */2 * * *', timeZone: 'Etc/UTC', expected: 2 * HOUR },
    { schedule: '15,45 */6 * * *', timeZone: 'Etc/UTC', expected: 5.5 * HOUR },
    { schedule: '0 4 * * *', timeZone: 'Etc/UTC', expected: DAY },
    { schedule: '0 2 * * 1-5', timeZone: 'Europe/Berlin', expected: 3 * DAY },
    { schedule: '0 9-17 * * 1-5', timeZone: 'Etc/UTC', expected: 64 * HOUR },
    { schedule: '* 9-17 * * *', timeZone: 'Etc/UTC', expected: 15 * HOUR + 60 },
    { schedule: '0 1 * * 0', timeZone: 'Etc/UTC', expected: 7 * DAY },
    { schedule: '0 0 1-10 * *', timeZone: 'Etc/UTC', expected: 22 * DAY }, // the 10th to the 1st (December: 31 days)
    { schedule: '@yearly', timeZone: 'Etc/UTC', expected: 365 * DAY },
  ])('$schedule in $timeZone: $expected s', ({ schedule, timeZone, expected }) => {
    const from = '2026-11-28T15:00:00Z';
    expect(scheduleIntervalSeconds(compileSchedule(schedule, timeZone), ms(from))).toBe(expected);
  });

  it.each([
    { schedule: '*/7 3-5,20 * * *', timeZone: 'Asia/Kolkata', from: '2026-11-28T15:00:00Z' },
    { schedule: '30 2 * * *', timeZone: 'Europe/Berlin', from: '2026-03-20T00:00:00Z' },
    { schedule: '30 2 * * *', timeZone: 'Europe/Berlin', from: '2026-10-20T00:00:00Z' },
    { schedule: '0 */4 * * 2,4', timeZone: 'America/Sao_Paulo', from: '2026-06-01T00:00:00Z' },
    { schedule: '45 23 1,15 * *', timeZone: 'Australia/Lord_Howe', from: '2026-09-20T00:00:00Z' },
  ])('agrees with walking every run: $schedule in $timeZone from $from', ({ schedule, timeZone, from }) => {
    expect(scheduleIntervalSeconds(compileSchedule(schedule, timeZone), ms(from))).toBe(bruteForce(schedule, timeZone, from));
  });

  it('includes a daylight-saving change within the window: a day of 23 or 25 hours, a skipped 02:30', () => {
    expect(scheduleIntervalSeconds(compileSchedule('0 3 * * *', 'Europe/Berlin'), ms('2026-10-20T00:00:00Z'))).toBe(25 * HOUR);
    expect(scheduleIntervalSeconds(compileSchedule('30 2 * * *', 'Europe/Berlin'), ms('2026-03-20T00:00:00Z'))).toBe(47 * HOUR);
  });

  it('has none for a schedule that never fires', () => {
    expect(scheduleIntervalSeconds(compileSchedule('0 0 30 2 *', 'Etc/UTC'), ms('2026-11-28T15:00:00Z'))).toBeUndefined();
  });
});

describe('ScheduleIntervals', () => {
  const t0 = ms('2026-11-28T15:00:00Z');

  it('computes each schedule and time zone once an hour, and gives nothing for an invalid one', () => {
    const intervals = new ScheduleIntervals();
    intervals.beginRound(t0);
    expect(intervals.get('*/5 * * * *', undefined, t0)).toBe(300);
    expect(intervals.get('*/5 * * * *', 'Etc/UTC', t0)).toBe(300); // the default zone: the same entry
    expect(intervals.get('0 4 * * *', 'Europe/Berlin', t0)).toBe(86_400);
    expect(intervals.get('not a cron', undefined, t0)).toBeUndefined();
    expect(intervals.get('0 4 * * *', 'Mars/Olympus_Mons', t0)).toBeUndefined();
    expect(intervals.size).toBe(4);
  });

  it('computes at most its budget per round: stale values are served, new schedules wait for a later round', () => {
    const intervals = new ScheduleIntervals(2);
    intervals.beginRound(t0);
    expect(intervals.get('*/5 * * * *', undefined, t0)).toBe(300);
    expect(intervals.get('*/10 * * * *', undefined, t0)).toBe(600);
    expect(intervals.get('*/15 * * * *', undefined, t0)).toBeUndefined(); // over budget
    expect(intervals.get('*/5 * * * *', undefined, t0)).toBe(300); // cached: free
    intervals.beginRound(t0 + 1000);
    expect(intervals.get('*/15 * * * *', undefined, t0 + 1000)).toBe(900);
    // Two hours on: all stale; one recomputed, the other served stale; unused entries forgotten.
    const later = t0 + 2 * 3_600_000 + 1000;
    const small = new ScheduleIntervals(1);
    small.beginRound(t0);
    small.get('*/5 * * * *', undefined, t0);
    small.beginRound(t0 + 1);
    small.get('*/10 * * * *', undefined, t0 + 1);
    small.beginRound(t0 + 3_600_000);
    expect(small.get('*/5 * * * *', undefined, t0 + 3_600_000)).toBe(300); // recomputed
    expect(small.get('*/10 * * * *', undefined, t0 + 3_600_000)).toBe(600); // stale, served as is
    small.beginRound(later);
    expect(small.size).toBe(1); // */10 was last computed over two hours ago
  });
});
