// The zod schema accepts and rejects the same corpus the apiserver does (the integration test
// checks the apiserver's side), for the same field, and with the same words where the rule is ours.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { backgroundTaskSchema } from '../../crds/schema.ts';
import { customResourceDefinitionYaml } from '../../crds/definition.ts';
import { invalidCases, validCases } from '../fixtures/crd/corpus.ts';

const valid = validCases();
const invalid = invalidCases();

/** `['spec', 'env', 0, 'valueFrom']` → `spec.env[0].valueFrom`, the way the apiserver prints paths. */
function apiserverPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/** Every x-kubernetes-validations message in the generated CRD: the rules zod must word identically. */
function celMessages(): string[] {
  const messages: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'x-kubernetes-validations') messages.push(...(value as { message: string }[]).map((v) => v.message));
      else walk(value);
    }
  };
  walk(parse(customResourceDefinitionYaml()));
  return messages;
}

describe('the validation corpus', () => {
  it('has a valid and an invalid side worth the name', () => {
    expect(valid.length).toBeGreaterThanOrEqual(15);
    expect(invalid.length).toBeGreaterThanOrEqual(25);
  });

  it('exercises every CEL rule of the CRD with at least one invalid manifest', () => {
    const expectations = invalid.map((c) => c.expect);
    const untested = celMessages().filter((message) => !expectations.some((e) => message.includes(e)));
    expect(untested).toEqual([]);
  });
});

describe('zod accepts every valid manifest', () => {
  it.each(valid.map((c) => [c.file, c] as const))('%s', (_file, { manifest }) => {
    const result = backgroundTaskSchema.safeParse(manifest);
    expect(result.error?.issues ?? []).toEqual([]);
  });
});

describe('zod rejects every invalid manifest, at the field the apiserver names', () => {
  const ourMessages = celMessages();
  it.each(invalid.map((c) => [c.file, c] as const))('%s', (_file, { manifest, expect: expected, field }) => {
    const result = backgroundTaskSchema.safeParse(manifest);
    expect(result.success).toBe(false);
    const issues = (result.error?.issues ?? []).map((i) => ({ path: apiserverPath(i.path), message: i.message }));
    const atField = issues.filter((i) => i.path === field);
    expect(atField, `issues: ${JSON.stringify(issues)}`).not.toEqual([]);
    // A CEL rule's message is shared with zod word for word; the apiserver's built-in checks
    // (types, bounds, patterns) have their own wording, which zod does not imitate.
    if (ourMessages.some((m) => m.includes(expected))) {
      expect(atField.map((i) => i.message).join('\n')).toContain(expected);
    }
  });
});
