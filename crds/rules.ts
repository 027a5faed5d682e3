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

/** When both optional fields are set, `lower` ≤ `upper`. The error is reported on `lower`. */
export function notGreaterThan<T extends object>(
  lower: keyof T & string,
  upper: keyof T & string,
  message: string,
): ValidationRule<T> {
  return {
    rule: `!has(self.${lower}) || !has(self.${upper}) || self.${lower} <= self.${upper}`,
    message,
    fieldPath: `.${lower}`,
    test: (value) => {
      const low = value[lower as keyof T];
      const up = value[upper as keyof T];
      return low === undefined || up === undefined || (low as number) <= (up as number);
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

/**
 * The value is a JSON scalar: number, string or boolean. For nodes whose type the CRD cannot
 * declare structurally (a union wider than int-or-string), so the type check has to be CEL.
 */
export function scalarValue(message: string): ValidationRule<unknown> {
  return {
    rule: 'type(self) in [int, uint, double, string, bool]',
    message,
    test: (value) => ['number', 'string', 'boolean'].includes(typeof value),
  };
}

/** Attaches rules to a zod schema: as refinements, and as CRD metadata for the generator. */
export function withRules<S extends z.ZodType>(schema: S, rules: readonly ValidationRule<z.output<S>>[]): S {
  const existing = (schema.meta()?.[VALIDATIONS_KEY] as CelValidation[] | undefined) ?? [];
  const validations: CelValidation[] = rules.map(({ rule, message, fieldPath }) =>
    fieldPath === undefined ? { rule, message } : { rule, message, fieldPath },
  );
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
