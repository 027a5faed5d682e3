import { describe, expect, it } from 'vitest';
import { DEFAULT_FAMILIES } from '../../operator/config/families.ts';
import { validateTask } from '../../operator/controller/validate.ts';
import { CATALOG, makeTask } from './operator-controller-fixtures.ts';
import type { TaskOptions } from './operator-controller-fixtures.ts';

const NOW = Date.parse('2026-11-28T12:00:00Z');
const validate = (spec: TaskOptions['spec']) => validateTask(makeTask({ spec }), CATALOG, DEFAULT_FAMILIES, NOW);

describe('validateTask', () => {
  it('accepts a good task and hands back what reconciling needs', () => {
    const v = validate({ params: { recipients: ['a@example.com'] }, timeZone: 'Europe/Berlin' });
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.meta.name).toBe('email.digest');
      expect(v.family).toBe('email');
      expect(v.familyConfig).toBe(DEFAULT_FAMILIES.email);
      expect(v.schedule.next(NOW)).toBe(Date.parse('2026-11-29T07:00:00Z'));
    }
  });

  it.each([
    { name: 'an unknown task', spec: { task: 'email.nope' }, field: 'spec.task', message: /unknown task "email.nope"; known tasks: email.digest, maintenance.cleanup-old-sessions/ },
    { name: 'params failing the task\'s schema', spec: { params: { recipients: ['not-an-address'] } }, field: 'spec.params.recipients.0', message: /spec.params.recipients.0: Invalid email/ },
    { name: 'an unknown param', spec: { params: { colour: 'red' } }, field: 'spec.params', message: /^spec\.params: Unrecognized key: "colour"$/ },
    { name: 'a typo of a param', spec: { params: { recipient: ['a@example.com'] } }, field: 'spec.params', message: /^spec\.params: Unrecognized key: "recipient"; did you mean recipients\?$/ },
    { name: 'an unknown time zone', spec: { timeZone: 'Mars/Olympus' }, field: 'spec.timeZone', message: /unknown time zone "Mars\/Olympus"/ },
    { name: 'a schedule that never fires', spec: { schedule: '0 0 30 2 *' }, field: 'spec.schedule', message: /never fires/ },
    { name: 'a cron field out of range', spec: { schedule: '0 24 * * *' }, field: 'spec.schedule', message: /spec.schedule/ },
    {
      name: 'a memory request above the family limit',
      spec: { resources: { requests: { memory: '2Gi' } } },
      field: 'spec.resources.requests.memory',
      message: /memory request 2Gi exceeds the limit 1Gi/,
    },
    { name: 'a cpu limit below the family request', spec: { resources: { limits: { cpu: '100m' } } }, field: 'spec.resources.limits.cpu', message: /cpu request 500m exceeds the limit 100m/ },
    { name: 'a soft timeout beyond the default timeout', spec: { softTimeoutSeconds: 900 }, field: 'spec.softTimeoutSeconds', message: /900 exceeds the timeout of 600/ },
  ])('refuses $name, naming $field', ({ spec, field, message }) => {
    const v = validate(spec as TaskOptions['spec']);
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.field).toBe(field);
      expect(v.message).toMatch(message);
    }
  });
});
