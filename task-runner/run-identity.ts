import { randomUUID } from 'node:crypto';
import type { RunTrigger } from '../crds/schema.ts';

/** Which run this process is: given by the operator through the downward API, or made up locally. */
export interface RunIdentity {
  id: string;
  trigger: RunTrigger;
  attempt: number;
}

export function runIdentity(env: { BGTASK_RUN_ID?: string | undefined; BGTASK_TRIGGER: RunTrigger; BGTASK_ATTEMPT: number }): RunIdentity {
  // A run started by hand outside the operator still needs an id for its logs and task_runs row.
  return { id: env.BGTASK_RUN_ID ?? `local-${randomUUID()}`, trigger: env.BGTASK_TRIGGER, attempt: env.BGTASK_ATTEMPT };
}
