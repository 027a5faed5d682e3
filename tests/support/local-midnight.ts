// Tests that seed "yesterday" and "today" in a user's time zone, then check a task's view of them
// a minute later, would see the day change under them if they ran across that zone's midnight.
// They start clear of it instead: close before midnight in any of the zones, they wait it out.
// Tests of a task that acts from a local hour on do the same with the start of the next hour.
import { Zone } from '../../operator/controller/zoned-time.ts';

/** Milliseconds from `now` until the next midnight of the wall clock in `zone`. */
export function msUntilLocalMidnight(zone: string, now = Date.now()): number {
  const z = Zone.load(zone);
  const today = z.wall(now);
  return z.date(today.year, today.month, today.day + 1, 0, 0, 0) - now;
}

/** Milliseconds from `now` until the wall clock in `zone` shows another hour. */
export function msUntilLocalHourChange(zone: string, now = Date.now()): number {
  const z = Zone.load(zone);
  const wall = z.wall(now);
  return z.date(wall.year, wall.month, wall.day, wall.hour + 1, 0, 0) - now;
}

/**
 * Resolves at once unless midnight comes within `marginMs` in one of the zones; then resolves a
 * second after the last such midnight has passed.
 */
export async function clearOfLocalMidnight(zones: string[], marginMs: number): Promise<void> {
  await clearOf('midnight to pass', 'day', zones.map((z) => msUntilLocalMidnight(z)), zones, marginMs);
}

/** The same for the next hour's start (midnight included) in each of the zones. */
export async function clearOfLocalHourChange(zones: string[], marginMs: number): Promise<void> {
  await clearOf('the next hour to begin', 'hour', zones.map((z) => msUntilLocalHourChange(z)), zones, marginMs);
}

async function clearOf(what: string, unit: string, untilMs: number[], zones: string[], marginMs: number): Promise<void> {
  const wait = Math.max(0, ...untilMs.filter((ms) => ms < marginMs).map((ms) => ms + 1000));
  if (wait > 0) {
    console.warn(`waiting ${Math.ceil(wait / 1000)} s for ${what} in ${zones.join(', ')}: the test's local ${unit} must not change while it runs`);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
