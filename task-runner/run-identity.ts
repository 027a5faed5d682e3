import type { RunTrigger } from '../crds/constants.ts';

/** Which run this process is: given by the operator through the downward API, or made up locally. */
export interface RunIdentity {
  id: string;
  trigger: RunTrigger;
  attempt: number;
}

export function runIdentity(env: { BGTASK_RUN_ID?: string | undefined; BGTASK_TRIGGER: RunTrigger; BGTASK_ATTEMPT: number }): RunIdentity {
  // A run started by hand outside the operator still needs an id for its logs and task_runs row.
  // (The global crypto loads on first use only: a run given its id never pays for it.)
  return { id: env.BGTASK_RUN_ID ?? `local-${globalThis.crypto.randomUUID()}`, trigger: env.BGTASK_TRIGGER, attempt: env.BGTASK_ATTEMPT };
}
