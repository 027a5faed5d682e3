import { describe, expect, it } from 'vitest';
import { msUntilLocalHourChange, msUntilLocalMidnight } from '../support/local-midnight.ts';

describe('msUntilLocalMidnight', () => {
  it('counts to the midnight of the zone, not of UTC', () => {
    // 22:58:00Z is 23:58 in Berlin in winter (UTC+1): two minutes left there, 62 in UTC.
    expect(msUntilLocalMidnight('Europe/Berlin', Date.parse('2026-11-28T22:58:00Z'))).toBe(120_000);
    expect(msUntilLocalMidnight('UTC', Date.parse('2026-11-28T22:58:00Z'))).toBe(62 * 60_000);
  });

  it('follows daylight saving time and keeps milliseconds', () => {
    // 03:59:30.250Z is 23:59:30.250 in New York in summer (UTC−4).
    expect(msUntilLocalMidnight('America/New_York', Date.parse('2026-07-01T03:59:30.250Z'))).toBe(29_750);
    // 04:59:30Z is 23:59:30 there in winter (UTC−5).
    expect(msUntilLocalMidnight('America/New_York', Date.parse('2026-01-15T04:59:30Z'))).toBe(30_000);
  });

  it('is a whole day right at midnight', () => {
    expect(msUntilLocalMidnight('Europe/Berlin', Date.parse('2026-11-28T23:00:00Z'))).toBe(86_400_000);
  });
});

describe('msUntilLocalHourChange', () => {
  it('counts to the next full hour of the zone, :30 offsets included', () => {
    expect(msUntilLocalHourChange('Europe/Berlin', Date.parse('2026-11-28T22:58:00Z'))).toBe(120_000);
    // 02:20Z is 07:50 in Kolkata (UTC+5:30): ten minutes to 08:00 there, forty to 03:00Z.
    expect(msUntilLocalHourChange('Asia/Kolkata', Date.parse('2026-11-28T02:20:00Z'))).toBe(600_000);
    expect(msUntilLocalHourChange('UTC', Date.parse('2026-11-28T02:20:00Z'))).toBe(40 * 60_000);
  });

  it('is a whole hour right at the hour, and counts over a skipped hour to the next wall hour', () => {
    expect(msUntilLocalHourChange('Europe/Berlin', Date.parse('2026-11-28T23:00:00Z'))).toBe(3_600_000);
    // Berlin, 2026-03-29: 01:30 CET (00:30Z); 02:00 does not exist, 03:00 CEST is 01:00Z.
    expect(msUntilLocalHourChange('Europe/Berlin', Date.parse('2026-03-29T00:30:00Z'))).toBe(30 * 60_000);
  });
});
