import { describe, expect, it } from 'vitest';
import { CRONJOB_NAME_MAX, JOB_NAME_MAX, cronJobName, manualJobName, retryJobName, shortHash } from '../../operator/controller/names.ts';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const task = (name: string, uid = '1b4e28ba-2fa1-11d2-883f-0016d3cca427') => ({ name, uid });

describe('cronJobName', () => {
  const long = 'nightly-database-maintenance-for-the-personal-assistant-x'; // 57
  it.each([
    { name: 'email-digest', expected: 'email-digest' },
    { name: 'a'.repeat(52), expected: 'a'.repeat(52) },
    { name: 'a.b.c', expected: 'a.b.c' },
  ])('keeps $name when it fits', ({ name, expected }) => {
    expect(cronJobName(name)).toBe(expected);
  });

  it('shortens a long name to 52 characters with a hash of the whole name', () => {
    const name = cronJobName(long);
    expect(name).toHaveLength(CRONJOB_NAME_MAX);
    expect(name).toBe(`${long.slice(0, 43)}-${shortHash(long)}`);
    expect(cronJobName(long)).toBe(name);
  });

  it('gives two long names with a common prefix two CronJobs', () => {
    expect(cronJobName(`${long}-a`)).not.toBe(cronJobName(`${long}-b`));
  });

  it.each(['-', '.'])('never leaves a %s where the prefix is cut', (separator) => {
    const name = cronJobName(`${'a'.repeat(42)}${separator}${'b'.repeat(20)}`);
    expect(name).toMatch(DNS_SUBDOMAIN);
    expect(name).toBe(`${'a'.repeat(42)}-${shortHash(`${'a'.repeat(42)}${separator}${'b'.repeat(20)}`)}`);
  });

  it('leaves room for the CronJob controller\'s Job names (<cronjob>-<8 digits>) within 63', () => {
    for (let length = 1; length <= 63; length++) {
      const name = cronJobName(`t${'x'.repeat(length - 1)}`);
      expect(name.length).toBeLessThanOrEqual(CRONJOB_NAME_MAX);
      expect(`${name}-29412345`.length).toBeLessThanOrEqual(JOB_NAME_MAX);
      expect(name).toMatch(DNS_SUBDOMAIN);
    }
  });
});

describe('Job names of runs the operator starts', () => {
  const names = ['daily', 'x'.repeat(63), `${'y'.repeat(50)}.z.${'w'.repeat(10)}`, 'a-b-c-d'];

  it.each(names)('fit a label value and a DNS subdomain for %s', (name) => {
    for (const jobName of [manualJobName(task(name), 'token-1'), retryJobName(task(name), `${name}-29412345`, 2), retryJobName(task(name), 'r', 21)]) {
      expect(jobName.length).toBeLessThanOrEqual(JOB_NAME_MAX);
      expect(jobName).toMatch(DNS_SUBDOMAIN);
      expect(jobName).toMatch(LABEL_VALUE);
    }
  });

  it('are the same for the same request, so a restarted operator finds the Job it made', () => {
    expect(manualJobName(task('daily'), '2026-11-28T10:00:00Z')).toBe(manualJobName(task('daily'), '2026-11-28T10:00:00Z'));
    expect(retryJobName(task('daily'), 'daily-29412345', 3)).toBe(retryJobName(task('daily'), 'daily-29412345', 3));
  });

  it('differ by token, attempt, failed run and task incarnation', () => {
    const all = [
      manualJobName(task('daily'), 'one'),
      manualJobName(task('daily'), 'two'),
      manualJobName(task('daily', 'another-uid'), 'one'),
      retryJobName(task('daily'), 'daily-1', 2),
      retryJobName(task('daily'), 'daily-1', 3),
      retryJobName(task('daily'), 'daily-2', 2),
    ];
    expect(new Set(all).size).toBe(all.length);
  });

  it('refuses a retry numbered below 2 (attempt 1 is the original run)', () => {
    expect(() => retryJobName(task('daily'), 'daily-1', 1)).toThrow(RangeError);
  });
});
