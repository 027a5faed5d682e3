// email.send-daily-summary's "is due": from localHour on, by the wall clock of the user's own zone,
// for the user's local date; across DST changes, offsets of :30, and zones nobody knows.
import { describe, expect, it } from 'vitest';
import { localSummaryDay } from '../../task-runner/tasks/email/summary-due.ts';

const at = (iso: string) => new Date(iso);
const check = (iso: string, zone: string, localHour: number) => {
  const local = localSummaryDay(at(iso), zone, localHour);
  return local && { date: local.day.toISODate(), due: local.due, start: local.day.toUTC().toISO() };
};

describe('localSummaryDay', () => {
  it('is due from localHour on in the user\'s zone, not in UTC', () => {
    // 06:30Z on 2024-05-01: 08:30 in Berlin (CEST), 02:30 in New York (EDT), 15:30 in Tokyo.
    expect(check('2024-05-01T06:30:00Z', 'Europe/Berlin', 8)).toEqual({ date: '2024-05-01', due: true, start: '2024-04-30T22:00:00.000Z' });
    expect(check('2024-05-01T06:30:00Z', 'America/New_York', 8)).toEqual({ date: '2024-05-01', due: false, start: '2024-05-01T04:00:00.000Z' });
    expect(check('2024-05-01T06:30:00Z', 'Asia/Tokyo', 8)).toEqual({ date: '2024-05-01', due: true, start: '2024-04-30T15:00:00.000Z' });
    expect(check('2024-05-01T06:30:00Z', 'UTC', 8)).toEqual({ date: '2024-05-01', due: false, start: '2024-05-01T00:00:00.000Z' });
  });

  it('is due at localHour:00 exactly, not a moment before', () => {
    expect(check('2024-05-01T05:59:59.999Z', 'Europe/Berlin', 8)?.due).toBe(false);
    expect(check('2024-05-01T06:00:00Z', 'Europe/Berlin', 8)?.due).toBe(true);
    expect(check('2024-05-01T21:59:59Z', 'Europe/Berlin', 8)?.due).toBe(true); // 23:59:59: still the same day's
  });

  it("names the user's local date, which is not UTC's around midnight", () => {
    // 20:00Z on 2024-05-01 is 05:00 on May 2 in Tokyo: the new day's summary, not due yet.
    expect(check('2024-05-01T20:00:00Z', 'Asia/Tokyo', 8)).toMatchObject({ date: '2024-05-02', due: false });
    expect(check('2024-05-01T20:00:00Z', 'Asia/Tokyo', 5)).toMatchObject({ date: '2024-05-02', due: true });
    // 02:00Z on 2024-05-02 is 19:00 on May 1 in Los Angeles: still May 1's, due.
    expect(check('2024-05-02T02:00:00Z', 'America/Los_Angeles', 8)).toMatchObject({ date: '2024-05-01', due: true });
  });

  it('in a zone with a :30 offset, an hourly run on the hour sends it at the next full hour', () => {
    // Kolkata is UTC+5:30: 08:00 there is 02:30Z; the runs at 02:00Z and 03:00Z see 07:30 and 08:30.
    expect(check('2024-05-01T02:00:00Z', 'Asia/Kolkata', 8)?.due).toBe(false);
    expect(check('2024-05-01T02:30:00Z', 'Asia/Kolkata', 8)?.due).toBe(true);
    expect(check('2024-05-01T03:00:00Z', 'Asia/Kolkata', 8)?.due).toBe(true);
  });

  it('localHour 0 is due all day; 23 only in the last hour', () => {
    expect(check('2024-05-01T22:00:00Z', 'Europe/Berlin', 0)).toMatchObject({ date: '2024-05-02', due: true }); // 00:00 CEST
    expect(check('2024-05-01T20:59:59Z', 'Europe/Berlin', 23)?.due).toBe(false);
    expect(check('2024-05-01T21:00:00Z', 'Europe/Berlin', 23)?.due).toBe(true);
  });

  it('on a day whose localHour daylight saving skips, is due from the hour after the gap', () => {
    // Berlin, 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00Z; there is no 02:00 that day.
    expect(check('2024-03-31T00:59:59Z', 'Europe/Berlin', 2)).toMatchObject({ date: '2024-03-31', due: false, start: '2024-03-30T23:00:00.000Z' });
    expect(check('2024-03-31T01:00:00Z', 'Europe/Berlin', 2)).toMatchObject({ date: '2024-03-31', due: true });
  });

  it('on the day the clock falls back, is due from the first localHour and stays due', () => {
    // Berlin, 2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00Z, so 02:xx comes twice.
    expect(check('2024-10-27T00:00:00Z', 'Europe/Berlin', 2)?.due).toBe(true); // 02:00 CEST
    expect(check('2024-10-27T01:00:00Z', 'Europe/Berlin', 2)?.due).toBe(true); // 02:00 CET
    expect(check('2024-10-27T01:00:00Z', 'Europe/Berlin', 3)?.due).toBe(false);
  });

  it('has no local day in a zone nobody knows', () => {
    expect(localSummaryDay(at('2024-05-01T06:30:00Z'), 'Mars/Olympus_Mons', 8)).toBeUndefined();
    expect(localSummaryDay(at('2024-05-01T06:30:00Z'), '', 0)).toBeUndefined();
  });
});
