// The notification of a new calendar event: which occurrence it announces (one per UID, upcoming,
// not cancelled) and its text, with times in the user's zone (DST included) and all-day events as dates.
import { describe, expect, it } from 'vitest';
import type { EventRow } from '../../task-runner/tasks/sync/ics-events.ts';
import { eventNotification, newEventsToAnnounce } from '../../task-runner/tasks/sync/event-notifications.ts';

const row = (over: Partial<EventRow> & Pick<EventRow, 'uid' | 'startsAt'>): EventRow => ({
  recurrenceId: null,
  summary: over.uid,
  description: null,
  location: null,
  endsAt: null,
  allDay: false,
  rrule: null,
  status: 'confirmed',
  sequence: 0,
  ...over,
});
const at = (iso: string) => new Date(iso);

describe('newEventsToAnnounce', () => {
  const now = at('2027-03-10T12:00:00Z');
  const weekly = (start: string, status: EventRow['status'] = 'confirmed') =>
    row({ uid: 'weekly', recurrenceId: at(start), startsAt: at(start), endsAt: new Date(at(start).getTime() + 3_600_000), rrule: 'FREQ=WEEKLY', status });

  it('announces a recurring event once, by its first occurrence not over yet and not cancelled', () => {
    // Out of order, as a feed may list them: the 3rd is over, the 10th cancelled, the 17th the first left.
    const rows = [weekly('2027-03-24T09:00:00Z'), weekly('2027-03-03T09:00:00Z'), weekly('2027-03-17T09:00:00Z'), weekly('2027-03-10T13:00:00Z', 'cancelled')];
    expect(newEventsToAnnounce(rows, new Set(), now)).toEqual([rows[2]]);
  });

  it('counts an occurrence under way as upcoming, and one without an end by its start', () => {
    const running = row({ uid: 'running', startsAt: at('2027-03-10T11:00:00Z'), endsAt: at('2027-03-10T12:00:00Z') });
    const pointPast = row({ uid: 'point-past', startsAt: at('2027-03-10T11:59:59Z') });
    const pointNow = row({ uid: 'point-now', startsAt: now });
    expect(newEventsToAnnounce([running, pointPast, pointNow], new Set(), now).map((r) => r.uid)).toEqual(['running', 'point-now']);
  });

  it('leaves out events whose UID is stored already, wholly past ones and cancelled ones', () => {
    const rows = [
      row({ uid: 'known', startsAt: at('2027-04-01T09:00:00Z') }),
      row({ uid: 'past', startsAt: at('2027-03-01T09:00:00Z'), endsAt: at('2027-03-01T10:00:00Z') }),
      row({ uid: 'cancelled', startsAt: at('2027-04-01T09:00:00Z'), status: 'cancelled' }),
      row({ uid: 'tentative', startsAt: at('2027-04-01T09:00:00Z'), status: 'tentative' }),
    ];
    expect(newEventsToAnnounce(rows, new Set(['known']), now).map((r) => r.uid)).toEqual(['tentative']);
  });
});

describe('eventNotification', () => {
  it("gives a timed event's day, times and zone in the user's zone, and its place", () => {
    const event = row({ uid: 'e', summary: 'Dentist', location: 'Friedrichstr. 5', startsAt: at('2027-03-12T15:00:00Z'), endsAt: at('2027-03-12T16:00:00Z') });
    expect(eventNotification(event, 'Europe/Berlin')).toEqual({
      title: 'New calendar event: Dentist',
      body: 'When: Friday 12 March 2027, 16:00–17:00 (Europe/Berlin)\nWhere: Friedrichstr. 5',
    });
    // The same instant is another day in another zone.
    expect(eventNotification({ ...event, startsAt: at('2027-03-12T23:30:00Z'), endsAt: null }, 'America/New_York').body).toBe(
      'When: Friday 12 March 2027, 18:30 (America/New_York)\nWhere: Friedrichstr. 5',
    );
  });

  it("uses the offset of the event's own date, across a DST change too", () => {
    // Europe/Berlin moves from +01:00 to +02:00 at 02:00 on 28 March 2027.
    const winter = row({ uid: 'w', startsAt: at('2027-03-22T09:00:00Z'), endsAt: at('2027-03-22T09:30:00Z') });
    const summer = row({ uid: 's', startsAt: at('2027-03-29T08:00:00Z'), endsAt: at('2027-03-29T08:30:00Z') });
    const overnight = row({ uid: 'n', startsAt: at('2027-03-28T00:00:00Z'), endsAt: at('2027-03-28T02:00:00Z') });
    expect(eventNotification(winter, 'Europe/Berlin').body).toBe('When: Monday 22 March 2027, 10:00–10:30 (Europe/Berlin)');
    expect(eventNotification(summer, 'Europe/Berlin').body).toBe('When: Monday 29 March 2027, 10:00–10:30 (Europe/Berlin)');
    expect(eventNotification(overnight, 'Europe/Berlin').body).toBe('When: Sunday 28 March 2027, 01:00–04:00 (Europe/Berlin)'); // two hours
  });

  it('names both days of an event ending on another day', () => {
    const event = row({ uid: 'late', startsAt: at('2027-03-12T21:00:00Z'), endsAt: at('2027-03-13T01:00:00Z') });
    expect(eventNotification(event, 'Europe/Berlin').body).toBe('When: Friday 12 March 2027, 22:00 – Saturday 13 March 2027, 02:00 (Europe/Berlin)');
  });

  it('gives all-day events as dates: one day, or the first and the last (the end is the midnight after)', () => {
    // Berlin midnights, as the sync stores all-day dates; 28 March is a 23-hour day.
    const oneDay = row({ uid: 'b', summary: "Grace's birthday", allDay: true, startsAt: at('2027-03-27T23:00:00Z'), endsAt: at('2027-03-28T22:00:00Z') });
    const trip = row({ uid: 't', summary: 'Trip', allDay: true, startsAt: at('2027-03-26T23:00:00Z'), endsAt: at('2027-03-29T22:00:00Z') });
    expect(eventNotification(oneDay, 'Europe/Berlin').body).toBe('When: Sunday 28 March 2027, all day');
    expect(eventNotification(trip, 'Europe/Berlin').body).toBe('When: Saturday 27 March 2027 – Monday 29 March 2027, all day');
  });

  it('says a recurring event repeats, and keeps the title and place on one line with a fallback title', () => {
    const event = row({ uid: 'r', summary: ' \n ', location: 'Room 4\nsecond floor', rrule: 'FREQ=WEEKLY', startsAt: at('2027-03-22T09:00:00Z'), endsAt: at('2027-03-22T09:30:00Z') });
    expect(eventNotification(event, 'Europe/Berlin')).toEqual({
      title: 'New calendar event: (untitled)',
      body: 'When: Monday 22 March 2027, 10:00–10:30 (Europe/Berlin)\nWhere: Room 4 second floor\nRepeats: yes; the time above is its next occurrence',
    });
    expect(eventNotification({ ...event, summary: 'Line one\nline two' }, 'Europe/Berlin').title).toBe('New calendar event: Line one line two');
  });

  it('falls back to UTC, said as such, for a zone luxon does not know', () => {
    const event = row({ uid: 'u', startsAt: at('2027-03-22T09:00:00Z'), endsAt: at('2027-03-22T09:30:00Z') });
    expect(eventNotification(event, 'Mars/Olympus').body).toBe('When: Monday 22 March 2027, 09:00–09:30 (UTC)');
  });
});
