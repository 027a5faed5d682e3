// The cron dialect a BackgroundTask's spec.schedule accepts, as regular expressions built from one
// table of field ranges. The same regex strings feed the CRD's CEL rules (RE2, in the apiserver) and
// the zod refinements (JavaScript), so they use only syntax both engines read the same way: no
// backslashes, no look-around, no flags.
//
// The dialect is the one Kubernetes CronJobs accept (robfig/cron's standard parser), minus
// `@every`: a schedule accepted here must never be refused when the operator creates the CronJob.
// It is stricter in ways that only refuse nonsense: a step larger than the field's maximum
// (`*/60` minutes), an empty list item (`1,,2`), and `?` outside the two day fields.

import { celString, type ValidationRule } from './rules.ts';

export interface CronField {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Three-letter names standing for min, min+1, …; matched case-insensitively like robfig/cron does. */
  readonly names?: readonly string[];
  /** `?` is a synonym of `*` for the two day fields. */
  readonly allowsQuestionMark?: boolean;
}

export const CRON_FIELDS: readonly CronField[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31, allowsQuestionMark: true },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'],
  },
  // 0-6, not 0-7: the CronJob API (robfig/cron) refuses 7 for Sunday, so accepting it here would
  // produce a task whose CronJob can never be created.
  { name: 'day-of-week', min: 0, max: 6, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'], allowsQuestionMark: true },
];

export const CRON_MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'] as const;

/** Longest accepted schedule; also bounds the cost the apiserver estimates for the CEL regexes. */
export const SCHEDULE_MAX_LENGTH = 128;

const ANY_FIELD = '[^ ]+';
const SEPARATOR = ' +';

/** A regex alternation matching the decimal integers lo..hi (0 ≤ lo ≤ hi ≤ 99), leading zero allowed. */
export function integerRangePattern(lo: number, hi: number): string {
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > 99 || lo > hi) {
    throw new RangeError(`unsupported integer range ${lo}-${hi}`);
  }
  const digits = (from: number, to: number) => (from === to ? `${from}` : `[${from}-${to}]`);
  const firstTen = Math.floor(lo / 10);
  const lastTen = Math.floor(hi / 10);
  const isWholeTen = (ten: number) => ten > 0 && (ten > firstTen || lo % 10 === 0) && (ten < lastTen || hi % 10 === 9);
  const alternatives: string[] = [];
  for (let ten = firstTen; ten <= lastTen; ten++) {
    if (isWholeTen(ten)) {
      // A run of whole tens is one alternative: [1-5][0-9] rather than five.
      let runEnd = ten;
      while (runEnd < lastTen && isWholeTen(runEnd + 1)) runEnd++;
      alternatives.push(`${digits(ten, runEnd)}[0-9]`);
      ten = runEnd;
      continue;
    }
    const ones = digits(ten === firstTen ? lo % 10 : 0, ten === lastTen ? hi % 10 : 9);
    alternatives.push(ten === 0 ? `0?${ones}` : `${ten}${ones}`);
  }
  return `(${alternatives.join('|')})`;
}

/** `Jan` → `[Jj][Aa][Nn]`: case-insensitive without regex flags, which CEL and JavaScript spell differently. */
function caseInsensitive(word: string): string {
  return [...word].map((c) => `[${c.toUpperCase()}${c.toLowerCase()}]`).join('');
}

/** The regex (unanchored) of one cron field: comma-separated items, each `*`, a value or a range, with an optional `/step`. */
export function cronFieldPattern(field: CronField): string {
  const numbers = integerRangePattern(field.min, field.max);
  const value = field.names ? `(${numbers}|${field.names.map(caseInsensitive).join('|')})` : numbers;
  const step = integerRangePattern(1, field.max);
  const item = `([*]|${value}(-${value})?)(/${step})?`;
  const list = `${item}(,${item})*`;
  return field.allowsQuestionMark ? `([?]|${list})` : `(${list})`;
}

/** Matches a macro or any five space-separated fields, whatever their content. */
export const SCHEDULE_SHAPE_PATTERN = `^(${CRON_MACROS.join('|')}|${ANY_FIELD}(${SEPARATOR}${ANY_FIELD}){4})$`;

/** Matches any five space-separated fields: the field rules below only apply to schedules of that shape. */
export const FIVE_FIELDS_PATTERN = `^${ANY_FIELD}(${SEPARATOR}${ANY_FIELD}){4}$`;

/** Matches a five-field schedule whose field at `index` is valid, whatever the other four hold. */
export function scheduleFieldPattern(index: number): string {
  const field = CRON_FIELDS[index];
  if (!field) throw new RangeError(`no cron field at index ${index}`);
  const before = `${ANY_FIELD}${SEPARATOR}`.repeat(index);
  const after = `${SEPARATOR}${ANY_FIELD}`.repeat(CRON_FIELDS.length - 1 - index);
  return `^${before}${cronFieldPattern(field)}${after}$`;
}

/** The human message for an invalid field, shared by the apiserver and zod. */
export function cronFieldMessage(field: CronField): string {
  const names = field.names ? ` or ${field.names[0]}-${field.names[field.names.length - 1]}` : '';
  const question = field.allowsQuestionMark ? ' (? means *)' : '';
  return (
    `the ${field.name} field of spec.schedule must be *${question}, a value ${field.min}-${field.max}${names}, ` +
    `a range a-b, a step */n or a-b/n, or a comma-separated list of those`
  );
}

/** Numbers the three-letter names stand for; month and day names never clash. */
const NAME_VALUES: Readonly<Record<string, number>> = Object.fromEntries(
  CRON_FIELDS.flatMap((field) => (field.names ?? []).map((name, offset) => [name.toLowerCase(), field.min + offset])),
);

const RANGE_PATTERN = '[0-9A-Za-z]+-[0-9A-Za-z]+';
const NUMBER_PATTERN = '^[0-9]+$';

function endpointValue(text: string): number | undefined {
  return new RegExp(NUMBER_PATTERN).test(text) ? Number(text) : NAME_VALUES[text.toLowerCase()];
}

/**
 * Ranges run from low to high (`MON-FRI`, not `FRI-MON`): the CronJob API refuses a range that
 * wraps around, and no regex can compare two numbers. Endpoints that are not values are left to
 * the field rules.
 */
export function rangesAscending(message: string): ValidationRule<string> {
  const names = `{${Object.entries(NAME_VALUES).map(([name, value]) => `${celString(name)}: ${value}`).join(', ')}}`;
  const known = (x: string) => `(${x}.matches(${celString(NUMBER_PATTERN)}) || ${x}.lowerAscii() in ${names})`;
  const value = (x: string) => `(${x}.matches(${celString(NUMBER_PATTERN)}) ? int(${x}) : ${names}[${x}.lowerAscii()])`;
  const [low, high] = ["r.split('-')[0]", "r.split('-')[1]"];
  const fiveFields = new RegExp(FIVE_FIELDS_PATTERN);
  return {
    rule:
      `!self.matches(${celString(FIVE_FIELDS_PATTERN)}) || self.findAll(${celString(RANGE_PATTERN)}).all(r, ` +
      `!${known(low)} || !${known(high)} || ${value(low)} <= ${value(high)})`,
    message,
    test: (schedule) =>
      !fiveFields.test(schedule) ||
      (schedule.match(new RegExp(RANGE_PATTERN, 'g')) ?? []).every((range) => {
        const [low = '', high = ''] = range.split('-');
        const [from, to] = [endpointValue(low), endpointValue(high)];
        return from === undefined || to === undefined || from <= to;
      }),
  };
}
