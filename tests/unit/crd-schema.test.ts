// What the operator and the task-runner get from crds/schema.ts beyond the manifest corpus:
// defaults, the status (which a create cannot set, so the corpus cannot reach it) and helpers.
import { describe, expect, it } from 'vitest';
import {
  backgroundTaskSpecSchema,
  backgroundTaskStatusSchema,
  familyOf,
  lastRunSchema,
  parseBackgroundTask,
  type BackgroundTaskStatus,
  type LastRun,
} from '../../crds/schema.ts';

const lastRun: LastRun = {
  runId: 'email.digest-20260301-0300-1',
  trigger: 'Schedule',
  attempt: 1,
  startTime: '2026-03-01T03:00:02Z',
  completionTime: '2026-03-01T03:00:09.5+01:00',
  durationSeconds: 7.5,
  outcome: 'Succeeded',
  summary: { emailsSent: 3, ratio: 0.25, folder: 'INBOX', truncated: false },
  message: 'sent 3 digests',
};

const status: BackgroundTaskStatus = {
  observedGeneration: 2,
  conditions: [
    { type: 'Ready', status: 'True', observedGeneration: 2, lastTransitionTime: '2026-03-01T03:00:10Z', reason: 'CronJobReady', message: '' },
    { type: 'Degraded', status: 'False', lastTransitionTime: '2026-03-01T03:00:10Z', reason: 'AsExpected', message: 'ok' },
  ],
  family: 'email',
  cronJobName: 'bgt-email-digest',
  lastScheduleTime: '2026-03-01T03:00:00Z',
  nextScheduleTime: '2026-03-02T03:00:00Z',
  lastSuccessfulTime: '2026-03-01T03:00:09Z',
  active: [{ name: 'bgt-email-digest-29543220', runId: 'r2', queued: true }],
  lastRun,
  succeeded: 10,
  failed: 1,
  consecutiveFailures: 0,
};

describe('the spec', () => {
  it('fills in the same defaults the CRD declares', () => {
    expect(backgroundTaskSpecSchema.parse({ task: 'email.digest', schedule: '@daily' })).toEqual({
      task: 'email.digest',
      schedule: '@daily',
      suspend: false,
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 3600,
    });
  });

  it('reports a cross-field rule at the field it names', () => {
    const result = backgroundTaskSpecSchema.safeParse({ task: 'ai.x', schedule: '@daily', timeoutSeconds: 10, softTimeoutSeconds: 11 });
    expect(result.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['softTimeoutSeconds', 'must not exceed timeoutSeconds']]);
  });
});

describe('the status', () => {
  it('accepts what the operator writes', () => {
    expect(backgroundTaskStatusSchema.parse(status)).toEqual(status);
  });

  it.each([
    ['a summary value that is an object', { lastRun: { ...lastRun, summary: { nested: { a: 1 } } } }, 'lastRun.summary.nested'],
    ['a summary with 65 entries', { lastRun: { ...lastRun, summary: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])) } }, 'lastRun.summary'],
    ['an unknown outcome', { lastRun: { ...lastRun, outcome: 'Exploded' } }, 'lastRun.outcome'],
    ['an attempt 0', { lastRun: { ...lastRun, attempt: 0 } }, 'lastRun.attempt'],
    ['a message over 1024 characters', { lastRun: { ...lastRun, message: 'x'.repeat(1025) } }, 'lastRun.message'],
    ['a time without a zone', { lastScheduleTime: '2026-03-01T03:00:00' }, 'lastScheduleTime'],
    ['a negative counter', { consecutiveFailures: -1 }, 'consecutiveFailures'],
    ['two conditions of one type', { conditions: [status.conditions![0], status.conditions![0]] }, 'conditions.1'],
    ['a condition reason that is not CamelCase', { conditions: [{ ...status.conditions![0]!, reason: 'not ready' }] }, 'conditions.0.reason'],
    ['a condition status other than True/False/Unknown', { conditions: [{ ...status.conditions![0]!, status: 'Yes' }] }, 'conditions.0.status'],
  ])('rejects %s', (_what, candidate, path) => {
    const result = backgroundTaskStatusSchema.safeParse(candidate);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(path);
  });

  it('exports lastRunSchema for the task-runner\'s report', () => {
    expect(lastRunSchema.parse(lastRun)).toEqual(lastRun);
  });
});

describe('helpers', () => {
  it('familyOf reads the family off a task name', () => {
    expect(familyOf('maintenance.vacuum-db')).toBe('maintenance');
    expect(() => familyOf('billing.invoice')).toThrow(/no known family/);
  });

  it('parseBackgroundTask keeps metadata and applies spec defaults', () => {
    const task = parseBackgroundTask({
      apiVersion: 'workers.personal-assistant.io/v1alpha1',
      kind: 'BackgroundTask',
      metadata: { name: 'digest', namespace: 'me', labels: { a: 'b' } },
      spec: { task: 'email.digest', schedule: '0 7 * * *' },
    });
    expect(task.metadata).toEqual({ name: 'digest', namespace: 'me', labels: { a: 'b' } });
    expect(task.spec.concurrencyPolicy).toBe('Forbid');
    expect(() => parseBackgroundTask({ apiVersion: 'v1', kind: 'BackgroundTask', metadata: {}, spec: {} })).toThrow();
  });
});
