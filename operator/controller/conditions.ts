// metav1.Condition bookkeeping: a condition's lastTransitionTime moves only when its status
// does, so rebuilding the same conditions from the same world gives the same object (no write).
import type { Condition } from '../../crds/schema.ts';

export type ConditionStatus = Condition['status'];

export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/**
 * The conditions `updates` describe, in their order, each keeping the previous lastTransitionTime
 * when its status is unchanged. Conditions of other types are dropped: the list is rebuilt whole.
 */
export function buildConditions(previous: readonly Condition[] | undefined, updates: readonly ConditionUpdate[], generation: number | undefined, now: Date): Condition[] {
  return updates.map((u) => {
    const before = previous?.find((c) => c.type === u.type);
    const condition: Condition = {
      type: u.type,
      status: u.status,
      lastTransitionTime: before && before.status === u.status ? before.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      reason: u.reason,
      message: u.message.slice(0, 32_768),
    };
    if (generation !== undefined) condition.observedGeneration = generation;
    return condition;
  });
}
