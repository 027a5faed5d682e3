// The cron regexes built from the field table: exact on numbers, names, ranges, steps and lists.
import { describe, expect, it } from 'vitest';
import { CRON_FIELDS, cronFieldPattern, integerRangePattern, rangesAscending, scheduleFieldPattern } from '../../crds/cron.ts';

const anchored = (pattern: string) => new RegExp(`^${pattern}$`);

describe('integerRangePattern', () => {
  it('matches exactly lo..hi, for every range within 0..99', () => {
    const spellings = (n: number) => (n < 10 ? [`${n}`, `0${n}`] : [`${n}`]);
    for (let lo = 0; lo <= 99; lo++) {
      for (let hi = lo; hi <= 99; hi++) {
        const regex = anchored(integerRangePattern(lo, hi));
        for (let n = 0; n <= 100; n++) {
          for (const text of spellings(n)) {
            if (regex.test(text) !== (n >= lo && n <= hi)) throw new Error(`${lo}-${hi} ${regex}: wrong on ${text}`);
          }
        }
        expect(regex.test('')).toBe(false);
      }
    }
  });

  it('collapses whole tens', () => {
    expect(integerRangePattern(0, 59)).toBe('(0?[0-9]|[1-5][0-9])');
    expect(integerRangePattern(1, 31)).toBe('(0?[1-9]|[1-2][0-9]|3[0-1])');
  });

  it('refuses ranges it cannot express', () => {
    expect(() => integerRangePattern(5, 4)).toThrow(RangeError);
    expect(() => integerRangePattern(0, 100)).toThrow(RangeError);
  });
});

describe.each(CRON_FIELDS.map((f) => [f.name, f] as const))('the %s field', (_name, field) => {
  const regex = anchored(cronFieldPattern(field));
  const { min, max } = field;
  const accepted = [
    '*',
    `${min}`,
    `${max}`,
    `${min}-${max}`,
    `*/${max}`,
    `${min}-${max}/2`,
    `${min}/1`,
    `${min},${max}`,
    `${min}-${max},*/2,${max}`,
    ...(field.names ?? []).flatMap((n) => [n, n.toLowerCase(), n[0] + n.slice(1).toLowerCase()]),
    ...(field.names ? [`${field.names[0]}-${field.names[field.names.length - 1]}`, `${field.names[1]},${min}`] : []),
    ...(field.allowsQuestionMark ? ['?'] : []),
  ];
  const rejected = [
    '',
    `${max + 1}`,
    `${min}-${max + 1}`,
    `${max + 1}-${max}`,
    `*/0`,
    `*/${max + 1}`,
    `${min},${max + 1}`,
    `${min},,${max}`,
    `${min},`,
    `-${min}`,
    `${min}-`,
    '*/',
    '**',
    'L',
    'JANUARY',
    'FUN',
    ...(min > 0 ? [`${min - 1}`] : []),
    ...(field.allowsQuestionMark ? ['?/2', '?,1'] : ['?']),
    ...(field.names ? [] : ['MON', 'JAN']),
  ];

  it.each(accepted)('accepts %j', (text) => expect(regex.test(text)).toBe(true));
  it.each(rejected)('rejects %j', (text) => expect(regex.test(text)).toBe(false));
});

describe('scheduleFieldPattern', () => {
  it('checks only its own field of a five-field schedule', () => {
    const schedule = ['99', '99', '99', '99', '99'];
    CRON_FIELDS.forEach((_field, index) => {
      const regex = new RegExp(scheduleFieldPattern(index));
      expect(regex.test(schedule.join(' ')), `field ${index}`).toBe(false);
      const fixed = schedule.map((v, i) => (i === index ? '*' : v));
      expect(regex.test(fixed.join(' ')), `field ${index}`).toBe(true);
      expect(regex.test(fixed.join('  ')), `field ${index}, double spaces`).toBe(true);
      expect(regex.test(`${fixed.join(' ')} *`), `field ${index}, six fields`).toBe(false);
    });
  });
});

describe('rangesAscending', () => {
  const { test } = rangesAscending('must ascend');

  it.each(['0 9-17 * * MON-FRI', '0 5-5 * * *', '0 0 1 JAN-3,NOV-dec *', '0-30/10 */2 1-31/7 1-12/3 0-6/2', '@daily'])('accepts %j', (schedule) => {
    expect(test(schedule)).toBe(true);
  });

  it.each(['0 17-9 * * *', '0 0 * * FRI-MON', '0 0 1 DEC-3/2 *', '0 0 10-09 * *', '59-0 * * * *'])('rejects %j', (schedule) => {
    expect(test(schedule)).toBe(false);
  });

  it('leaves ranges with endpoints that are no values to the field rules', () => {
    expect(test('0 0 * * FUN-MON')).toBe(true);
  });
});
