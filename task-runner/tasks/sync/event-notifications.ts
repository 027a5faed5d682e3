/**
 * The e-mail notification sync.calendar-events queues for an event new to a user's calendar: which
 * occurrence it announces, and its plain-text title and body, with times in the user's zone.
 */
import { DateTime, IANAZone } from 'luxon';
import type { EventRow } from './ics-events.ts';

/**
 * For each UID of `rows` not in `known`, its first occurrence that is neither cancelled nor over
 * at `now` (its end, or its start when it has none): one per new event, however many occurrences
 * a recurring one has. A new event with no such occurrence (all in the past, or cancelled) has none.
 */
export function newEventsToAnnounce(rows: readonly EventRow[], known: ReadonlySet<string>, now: Date): EventRow[] {
  const first = new Map<string, EventRow>();
  for (const row of rows) {
    if (known.has(row.uid) || row.status === 'cancelled' || (row.endsAt ?? row.startsAt) < now) continue;
    const seen = first.get(row.uid);
    if (!seen || row.startsAt < seen.startsAt) first.set(row.uid, row);
  }
  return [...first.values()];
}

/** The notification of a new event announcing `event` (its first upcoming occurrence), for a user in `zone`. */
export function eventNotification(event: EventRow, zone: string): { title: string; body: string } {
  const summary = oneLine(event.summary);
  const location = oneLine(event.location ?? '');
  const lines = [`When: ${when(event, zone)}`];
  if (location) lines.push(`Where: ${location}`);
  if (event.rrule) lines.push('Repeats: yes; the time above is its next occurrence');
  return { title: `New calendar event: ${summary || '(untitled)'}`, body: lines.join('\n') };
}

const DATE_FORMAT = 'cccc d LLLL yyyy';
const TIME_FORMAT = 'HH:mm';

/**
 * When the occurrence is, in `zone` (UTC when the user's zone is unknown, so the mail still says
 * something true): all-day events as their dates, the end's date only when it falls on another day.
 */
function when(event: EventRow, zone: string): string {
  const shownZone = IANAZone.isValidZone(zone) ? zone : 'UTC';
  const local = (t: Date) => DateTime.fromJSDate(t, { zone: shownZone }).setLocale('en-GB');
  const start = local(event.startsAt);
  const end = event.endsAt && event.endsAt > event.startsAt ? local(event.endsAt) : null;
  if (event.allDay) {
    // An all-day end is the midnight after its last day.
    const lastDay = end?.minus({ days: 1 });
    return lastDay && !lastDay.hasSame(start, 'day') ? `${start.toFormat(DATE_FORMAT)} – ${lastDay.toFormat(DATE_FORMAT)}, all day` : `${start.toFormat(DATE_FORMAT)}, all day`;
  }
  const from = `${start.toFormat(DATE_FORMAT)}, ${start.toFormat(TIME_FORMAT)}`;
  if (!end) return `${from} (${shownZone})`;
  if (end.hasSame(start, 'day')) return `${from}–${end.toFormat(TIME_FORMAT)} (${shownZone})`;
  return `${from} – ${end.toFormat(DATE_FORMAT)}, ${end.toFormat(TIME_FORMAT)} (${shownZone})`;
}

/** A feed's text on one line: SUMMARY and LOCATION may hold line breaks, a mail subject may not. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
