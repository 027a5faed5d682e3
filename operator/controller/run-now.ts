// Run-now: `kubectl annotate bgt NAME workers.personal-assistant.io/run-now=$(date +%s)` asks for
// one manual run. Each distinct token gives exactly one Job: its name is a function of the token,
// and once the Job exists the operator records the token as handled on the task (annotation
// run-now-handled), so the Job may later be deleted by the history limits without the request
// being answered again. An optional run-now-params annotation (a JSON object) is merged over
// spec.params for that run and validated like them.
import type { Task, TaskMetadata } from './deps.ts';
import { RUN_NOW_ANNOTATION, RUN_NOW_HANDLED_ANNOTATION, RUN_NOW_PARAMS_ANNOTATION } from './labels.ts';
import { manualJobName } from './names.ts';
import { runnerArgs } from './desired-cronjob.ts';
import { describeIssues } from './validate.ts';

export type RunNowPlan =
  | { kind: 'none' }
  | { kind: 'invalid'; token: string; message: string }
  | { kind: 'create'; token: string; name: string; args: string[] };

export function planRunNow(task: Task, meta: TaskMetadata): RunNowPlan {
  const annotations = task.metadata.annotations ?? {};
  const token = annotations[RUN_NOW_ANNOTATION];
  if (token === undefined || token === '' || annotations[RUN_NOW_HANDLED_ANNOTATION] === token) return { kind: 'none' };

  let params: Record<string, unknown> = { ...task.spec.params };
  const overrides = annotations[RUN_NOW_PARAMS_ANNOTATION];
  if (overrides !== undefined && overrides.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(overrides);
    } catch (err) {
      return { kind: 'invalid', token, message: `annotation ${RUN_NOW_PARAMS_ANNOTATION} is not JSON: ${(err as Error).message}` };
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return { kind: 'invalid', token, message: `annotation ${RUN_NOW_PARAMS_ANNOTATION} must be a JSON object` };
    }
    params = { ...params, ...(parsed as Record<string, unknown>) };
  }
  const checked = meta.params.safeParse(params);
  if (!checked.success) {
    return { kind: 'invalid', token, message: `params of the run-now request are invalid for ${meta.name}: ${describeIssues(checked.error.issues, 'params')}` };
  }
  const name = manualJobName({ name: task.metadata.name ?? '', uid: task.metadata.uid ?? '' }, token);
  return { kind: 'create', token, name, args: runnerArgs(task.spec.task, params) };
}
