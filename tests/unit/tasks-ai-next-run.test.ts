// calculate_next_run: each schedule type, in the task's time zone, across DST changes and short months.
import { describe, expect, it } from 'vitest';
import { ScheduleError, nextRunAfter, type Schedule } from '../../task-runner/tasks/ai/next-run.ts';

const at = (iso: string) => new Date(iso);
const schedule = (s: Partial<Schedule>): Schedule => ({ schedule_type: 'once', schedule_config: {}, cron_expression: null, timezone: 'UTC', ...s });

describe('nextRunAfter', () => {
  it('once: no next run', () => {
    expect(nextRunAfter(schedule({}), at('2024-05-01T10:00:00Z'))).toBeNull();
  });

  it('daily: later today, else tomorrow, at the local wall-clock time', () => {
    const daily = schedule({ schedule_type: 'daily', schedule_config: { time: '08:00' }, timezone: 'America/New_York' });
    expect(nextRunAfter(daily, at('2024-05-01T11:00:00Z'))?.toISOString()).toBe('2024-05-01T12:00:00.000Z'); // 07:00 EDT → 08:00 EDT
    expect(nextRunAfter(daily, at('2024-05-01T12:00:00Z'))?.toISOString()).toBe('2024-05-02T12:00:00.000Z'); // exactly 08:00 → tomorrow
  });

  it('daily across the spring-forward and fall-back changes keeps 08:00 local', () => {
    const daily = schedule({ schedule_type: 'daily', schedule_config: { time: '08:00' }, timezone: 'Europe/Berlin' });
    // Berlin: CET (UTC+1) until 2024-03-31 02:00, then CEST (UTC+2); back on 2024-10-27.
    expect(nextRunAfter(daily, at('2024-03-30T08:00:00Z'))?.toISOString()).toBe('2024-03-31T06:00:00.000Z');
    expect(nextRunAfter(daily, at('2024-10-26T07:00:00Z'))?.toISOString()).toBe('2024-10-27T07:00:00.000Z');
  });

  it('daily at a time that does not exist that day moves forward by the gap', () => {
    const daily = schedule({ schedule_type: 'daily', schedule_config: { time: '02:30' }, timezone: 'Europe/Berlin' });
    expect(nextRunAfter(daily, at('2024-03-30T12:00:00Z'))?.toISOString()).toBe('2024-03-31T01:30:00.000Z'); // 03:30 CEST
  });

  it('weekly: the next given weekday (0 and 7 both Sunday)', () => {
    // 2024-05-01 is a Wednesday.
    const sunday = schedule({ schedule_type: 'weekly', schedule_config: { time: '18:30', weekday: 0 }, timezone: 'UTC' });
    expect(nextRunAfter(sunday, at('2024-05-01T10:00:00Z'))?.toISOString()).toBe('2024-05-05T18:30:00.000Z');
    expect(nextRunAfter({ ...sunday, schedule_config: { time: '18:30', weekday: 7 } }, at('2024-05-01T10:00:00Z'))?.toISOString()).toBe('2024-05-05T18:30:00.000Z');
    const wednesday = schedule({ schedule_type: 'weekly', schedule_config: { time: '09:00', weekday: 3 }, timezone: 'UTC' });
    expect(nextRunAfter(wednesday, at('2024-05-01T08:00:00Z'))?.toISOString()).toBe('2024-05-01T09:00:00.000Z');
    expect(nextRunAfter(wednesday, at('2024-05-01T09:00:00Z'))?.toISOString()).toBe('2024-05-08T09:00:00.000Z');
  });

  it('monthly: day 31 is the last day of a shorter month', () => {
    const monthly = schedule({ schedule_type: 'monthly', schedule_config: { time: '09:15', day: 31 }, timezone: 'Asia/Tokyo' });
    expect(nextRunAfter(monthly, at('2024-02-10T00:00:00Z'))?.toISOString()).toBe('2024-02-29T00:15:00.000Z'); // leap year
    expect(nextRunAfter(monthly, at('2024-02-29T01:00:00Z'))?.toISOString()).toBe('2024-03-31T00:15:00.000Z');
    expect(nextRunAfter(monthly, at('2024-04-01T00:00:00Z'))?.toISOString()).toBe('2024-04-30T00:15:00.000Z');
  });

  it('cron: the expression in the task time zone', () => {
    const cron = schedule({ schedule_type: 'cron', cron_expression: '0 9 * * 1-5', timezone: 'Europe/Berlin' });
    expect(nextRunAfter(cron, at('2024-05-03T08:00:00Z'))?.toISOString()).toBe('2024-05-06T07:00:00.000Z'); // Fri after 09:00 CEST → Mon
  });

  it.each([
    ['a missing time', schedule({ schedule_type: 'daily' }), /schedule_config.time must be "HH:MM"/],
    ['an hour out of range', schedule({ schedule_type: 'daily', schedule_config: { time: '24:00' } }), /schedule_config.time/],
    ['a weekday of 8', schedule({ schedule_type: 'weekly', schedule_config: { time: '10:00', weekday: 8 } }), /weekday must be an integer from 0 to 7/],
    ['a day of 0', schedule({ schedule_type: 'monthly', schedule_config: { time: '10:00', day: 0 } }), /day must be an integer from 1 to 31/],
    ['an unknown zone', schedule({ schedule_type: 'daily', schedule_config: { time: '10:00' }, timezone: 'Mars/Olympus' }), /unknown time zone "Mars\/Olympus"/],
    ['an invalid cron expression', schedule({ schedule_type: 'cron', cron_expression: '61 * * * *' }), /invalid cron_expression "61 \* \* \* \*"/],
  ])('refuses %s with a ScheduleError', (_what, s, message) => {
    expect(() => nextRunAfter(s, at('2024-05-01T00:00:00Z'))).toThrow(ScheduleError);
    expect(() => nextRunAfter(s, at('2024-05-01T00:00:00Z'))).toThrow(message);
  });
});
