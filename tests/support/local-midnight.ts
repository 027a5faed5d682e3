// Tests that seed "yesterday" and "today" in a user's time zone, then check a task's view of them
// a minute later, would see the day change under them if they ran across that zone's midnight.
// They start clear of it instead: close before midnight in any of the zones, they wait it out.

const DAY_MS = 86_400_000;

/** Milliseconds from `now` until the next midnight of the wall clock in `zone`. */
export function msUntilLocalMidnight(zone: string, now = Date.now()): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', hour: 'numeric', minute: 'numeric', second: 'numeric' }).formatToParts(now);
  const field = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const sinceMidnight = ((field('hour') * 60 + field('minute')) * 60 + field('second')) * 1000 + (now % 1000);
  // Days of 23 or 25 hours change their clocks at night but not at midnight in the zones tested.
  return DAY_MS - sinceMidnight;
}

/**
 * Resolves at once unless midnight comes within `marginMs` in one of the zones; then resolves a
 * second after the last such midnight has passed.
 */
export async function clearOfLocalMidnight(zones: string[], marginMs: number): Promise<void> {
  const wait = Math.max(0, ...zones.map((z) => msUntilLocalMidnight(z)).filter((ms) => ms < marginMs).map((ms) => ms + 1000));
  if (wait > 0) {
    console.warn(`waiting ${Math.ceil(wait / 1000)} s for midnight to pass in ${zones.join(', ')}: the test's "today" must not change while it runs`);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
