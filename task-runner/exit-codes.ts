import type { RunOutcome } from '../crds/constants.ts';
import { InvalidInputError, RunAborted } from './errors.ts';

/**
 * The runner's exit codes are a contract with the operator, which reads them from the pod:
 * 0 succeeded; 1 failed, worth a retry; 2 invalid input, never worth a retry;
 * 143 (128 + SIGTERM) stopped at a safe point after SIGTERM or the soft timeout.
 */
export const EXIT_CODES = {
  succeeded: 0,
  failed: 1,
  invalidInput: 2,
  interrupted: 143,
  /** Not produced by the runner: the kernel's SIGKILL (128 + 9), listed so the table is whole. */
  oomKilled: 137,
} as const;

export function exitCodeFor(outcome: RunOutcome): number {
  switch (outcome) {
    case 'Succeeded':
      return EXIT_CODES.succeeded;
    case 'Failed':
      return EXIT_CODES.failed;
    case 'InvalidInput':
      return EXIT_CODES.invalidInput;
    case 'Interrupted':
    case 'TimedOut':
    case 'Cancelled': // the operator's verdict on a run stopped by its Job's deletion (SIGTERM)
      return EXIT_CODES.interrupted;
    case 'OOMKilled':
      return EXIT_CODES.oomKilled;
  }
}

/**
 * The outcome of a run that ended with `err`. An error thrown once the run's signal was
 * aborted is the task stopping at a safe point (Interrupted after SIGTERM, TimedOut after
 * the soft timeout), whatever the task threw on its way out.
 */
export function outcomeForError(err: unknown, signal: AbortSignal): RunOutcome {
  if (err instanceof InvalidInputError) return 'InvalidInput';
  if (signal.aborted && signal.reason instanceof RunAborted) return signal.reason.outcome;
  return 'Failed';
}
