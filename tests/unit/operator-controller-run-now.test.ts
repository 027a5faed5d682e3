import { describe, expect, it } from 'vitest';
import { manualJobName } from '../../operator/controller/names.ts';
import { planRunNow } from '../../operator/controller/run-now.ts';
import { DIGEST, TASK_UID, makeTask } from './operator-controller-fixtures.ts';

const RUN_NOW = 'workers.personal-assistant.io/run-now';
const PARAMS = 'workers.personal-assistant.io/run-now-params';
const HANDLED = 'workers.personal-assistant.io/run-now-handled';

const plan = (annotations: Record<string, string>, params?: Record<string, unknown>) =>
  planRunNow(makeTask({ annotations, ...(params ? { spec: { params } } : {}) }), DIGEST);

describe('planRunNow', () => {
  it('does nothing without a request', () => {
    expect(plan({})).toEqual({ kind: 'none' });
    expect(plan({ [RUN_NOW]: '' })).toEqual({ kind: 'none' });
  });

  it('asks for one Job named after the token, with the spec\'s params', () => {
    expect(plan({ [RUN_NOW]: '1764324000' }, { recipients: ['a@example.com'] })).toEqual({
      kind: 'create',
      token: '1764324000',
      name: manualJobName({ name: 'digest', uid: TASK_UID }, '1764324000'),
      args: ['run', 'email.digest', '--params', '{"recipients":["a@example.com"]}'],
    });
  });

  it('is idempotent: the same token gives the same Job name, and a handled token gives nothing', () => {
    const first = plan({ [RUN_NOW]: 't1' });
    expect(plan({ [RUN_NOW]: 't1' })).toEqual(first);
    expect(plan({ [RUN_NOW]: 't1', [HANDLED]: 't1' })).toEqual({ kind: 'none' });
    const next = plan({ [RUN_NOW]: 't2', [HANDLED]: 't1' });
    expect(next.kind).toBe('create');
    expect(next.kind === 'create' && first.kind === 'create' && next.name !== first.name).toBe(true);
  });

  it('merges params overrides over spec.params for that run', () => {
    const p = plan({ [RUN_NOW]: 't', [PARAMS]: '{"subject":"weekly"}' }, { recipients: ['a@example.com'], subject: 'daily' });
    expect(p).toMatchObject({ kind: 'create', args: ['run', 'email.digest', '--params', '{"recipients":["a@example.com"],"subject":"weekly"}'] });
  });

  it.each([
    { name: 'params that are not JSON', params: '{subject:', message: /not JSON/ },
    { name: 'params that are not an object', params: '["x"]', message: /must be a JSON object/ },
    { name: 'params the task refuses', params: '{"subject": 42}', message: /params\.subject/ },
    { name: 'an unknown param', params: '{"colour": "red"}', message: /colour/ },
  ])('refuses $name, naming the problem', ({ params, message }) => {
    const p = plan({ [RUN_NOW]: 't', [PARAMS]: params });
    expect(p.kind).toBe('invalid');
    if (p.kind === 'invalid') {
      expect(p.token).toBe('t');
      expect(p.message).toMatch(message);
    }
  });
});
