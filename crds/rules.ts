// Validation rules written once and checked twice: as CEL `x-kubernetes-validations` by the
// apiserver, and as zod refinements by the operator and the task-runner. Each constructor below
// builds both forms from the same inputs (field names, a regex string, a message), so the two can
// only drift if a constructor is wrong, and the fixture corpus tests both sides against each other.
import * as z from 'zod';

export interface ValidationRule<T> {
  /** CEL expression, `self` being the value the rule is attached to. */
  readonly rule: string;
  readonly message: string;
  /** Relative path (`.field`) the apiserver and zod report the error at, when not the node itself. */
  readonly fieldPath?: string;
  /** The same rule in JavaScript: true when the value is valid. */
  readonly test: (value: T) => boolean;
}

/** The shape `x-kubernetes-validations` entries take in the CRD. */
export interface CelValidation {
  rule: string;
  message: string;
  fieldPath?: string;
  /** The rule sees `oldSelf` as an optional, so it also runs on create (CRDValidationRatcheting). */
  optionalOldSelf?: boolean;
}

export const VALIDATIONS_KEY = 'x-kubernetes-validations';

/** A CEL single-quoted string literal. */
export function celString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** The string does not contain `fragment`. */
export function notContaining(fragment: string, message: string): ValidationRule<string> {
  return {
    rule: `!self.contains(${celString(fragment)})`,
    message,
    test: (value) => !value.includes(fragment),
  };
}

/**
 * The string matches `pattern` (RE2 ∩ ECMAScript syntax; anchor it yourself). With `onlyIf`, the
 * rule only applies to strings that match that other pattern, so a malformed value is reported
 * once, by the rule about its shape, instead of by every rule about its parts.
 */
export function matching(pattern: string, message: string, onlyIf?: string): ValidationRule<string> {
  const regex = new RegExp(pattern);
  const guard = onlyIf === undefined ? undefined : new RegExp(onlyIf);
  const matches = `self.matches(${celString(pattern)})`;
  return {
    rule: onlyIf === undefined ? matches : `!self.matches(${celString(onlyIf)}) || ${matches}`,
    message,
    test: (value) => (guard !== undefined && !guard.test(value)) || regex.test(value),
  };
}

/** The string is not `forbidden`, compared ignoring ASCII case. */
export function notEqualIgnoringCase(forbidden: string, message: string): ValidationRule<string> {
  const lower = forbidden.toLowerCase();
  return {
    rule: `self.lowerAscii() != ${celString(lower)}`,
    message,
    test: (value) => value.toLowerCase() !== lower,
  };
}

/** When both optional numeric fields are set, `field` <op> `other`. The error is reported on `field`. */
export function comparingFields<T extends object>(
  field: keyof T & string,
  op: '<=' | '>=',
  other: keyof T & string,
  message: string,
): ValidationRule<T> {
  return {
    rule: `!has(self.${field}) || !has(self.${other}) || self.${field} ${op} self.${other}`,
    message,
    fieldPath: `.${field}`,
    test: (value) => {
      const left = value[field as keyof T] as number | undefined;
      const right = value[other as keyof T] as number | undefined;
      if (left === undefined || right === undefined) return true;
      return op === '<=' ? left <= right : left >= right;
    },
  };
}

/** Exactly one of the optional fields is set. */
export function exactlyOneOf<T extends object>(fields: readonly (keyof T & string)[], message: string): ValidationRule<T> {
  return {
    rule: `${fields.map((f) => `(has(self.${f}) ? 1 : 0)`).join(' + ')} == 1`,
    message,
    test: (value) => fields.filter((f) => value[f as keyof T] !== undefined).length === 1,
  };
}

/** At most one of the optional fields is set. */
export function atMostOneOf<T extends object>(fields: readonly (keyof T & string)[], message: string): ValidationRule<T> {
  return {
    rule: `${fields.map((f) => `(has(self.${f}) ? 1 : 0)`).join(' + ')} <= 1`,
    message,
    test: (value) => fields.filter((f) => value[f as keyof T] !== undefined).length <= 1,
  };
}

export interface WithRulesOptions {
  /**
   * The apiserver skips the rules when the value is the one the object already had. It evaluates
   * every rule of an object on every write, status writes included, and still evaluates a rule
   * whose value did not change (ratcheting only turns its failure into a warning): the
   * schedule's regular expressions were up to 7% of the apiserver's CPU per status write
   * (profiled with a schedule of ranges and names). A value that did not change passed these
   * rules when it was written, or was written before they existed, which ratcheting lets stand
   * as well. Creates and changed values are checked in full; the zod side always is.
   */
  skipUnchanged?: boolean;
}

/** A CEL rule that holds when the value equals its old value, and otherwise is `rule`. */
function unlessUnchanged(rule: string): string {
  return `(oldSelf.hasValue() && self == oldSelf.value()) || (${rule})`;
}

/** Attaches rules to a zod schema: as refinements, and as CRD metadata for the generator. */
export function withRules<S extends z.ZodType>(schema: S, rules: readonly ValidationRule<z.output<S>>[], opts: WithRulesOptions = {}): S {
  const existing = (schema.meta()?.[VALIDATIONS_KEY] as CelValidation[] | undefined) ?? [];
  const validations: CelValidation[] = rules.map(({ rule, message, fieldPath }) => ({
    rule: opts.skipUnchanged ? unlessUnchanged(rule) : rule,
    message,
    ...(fieldPath === undefined ? {} : { fieldPath }),
    ...(opts.skipUnchanged ? { optionalOldSelf: true } : {}),
  }));
  const refined = schema.superRefine((value, ctx) => {
    for (const rule of rules) {
      if (rule.test(value)) continue;
      ctx.addIssue({
        code: 'custom',
        message: rule.message,
        input: value,
        ...(rule.fieldPath === undefined ? {} : { path: [rule.fieldPath.slice(1)] }),
      });
    }
  });
  return refined.meta({ [VALIDATIONS_KEY]: [...existing, ...validations] }) as S;
}

/**
 * A list whose items are identified by `key` (`x-kubernetes-list-type: map`): the apiserver
 * refuses duplicate keys and server-side apply merges items by key; zod refuses duplicates too.
 */
export function keyedList<S extends z.ZodArray<z.ZodObject>>(schema: S, key: string): S {
  const refined = schema.superRefine((items, ctx) => {
    const seen = new Set<unknown>();
    items.forEach((item, index) => {
      const value = (item as Record<string, unknown>)[key];
      if (seen.has(value)) {
        ctx.addIssue({ code: 'custom', message: `Duplicate value: ${key} ${JSON.stringify(value)}`, input: items, path: [index] });
      }
      seen.add(value);
    });
  });
  return refined.meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': [key] }) as S;
}

/**
 * A map with at most `max` entries. The bound also keeps the apiserver's cost estimate of CEL
 * rules on its values small, as that estimate multiplies by the largest possible size.
 */
export function withMaxProperties<S extends z.ZodRecord>(schema: S, max: number): S {
  const refined = schema.refine((value) => Object.keys(value as object).length <= max, {
    message: `must have at most ${max} entries`,
  });
  return refined.meta({ maxProperties: max }) as S;
}
