/** Whether a user's daily summary is due: from `localHour` on, each day of the user's own zone. */
import { DateTime } from 'luxon';

export interface LocalSummaryDay {
  /** The start of the user's local day at `now`: the summary's day, and its date the claim's key. */
  day: DateTime;
  /** The user's wall clock has reached `localHour` that day. */
  due: boolean;
}

/**
 * The user's local day at `now` in `zone`, and whether its summary is due; undefined when the zone
 * is unknown. The wall-clock hour is compared, not an instant: on a day whose `localHour` a
 * daylight-saving change skips, the summary is due from the first hour after it.
 */
export function localSummaryDay(now: Date, zone: string, localHour: number): LocalSummaryDay | undefined {
  const local = DateTime.fromJSDate(now, { zone });
  if (!local.isValid) return undefined;
  return { day: local.startOf('day'), due: local.hour >= localHour };
}
