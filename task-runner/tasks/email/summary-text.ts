/** The daily summary e-mail's text: yesterday's task runs and AI results, today's events. */
import { DateTime } from 'luxon';

export interface SummaryData {
  name: string;
  zone: string;
  date: string;
  runs: { task: string; outcome: string; n: number }[];
  results: { title: string; status: string; result: string | null; error: string | null }[];
  events: { summary: string; starts_at: Date; ends_at: Date | null; all_day: boolean; location: string | null }[];
}

export function summaryText(d: SummaryData): { subject: string; text: string } {
  const time = (t: Date) => DateTime.fromJSDate(t, { zone: d.zone }).toFormat('HH:mm');
  const lines = [`Good morning ${d.name},`, '', `Your summary for ${d.date}.`, ''];
  lines.push(`Today's calendar (${d.events.length}):`);
  if (d.events.length === 0) lines.push('  nothing scheduled');
  for (const e of d.events) {
    const when = e.all_day ? 'all day' : e.ends_at ? `${time(e.starts_at)}–${time(e.ends_at)}` : time(e.starts_at);
    lines.push(`  ${when}  ${e.summary}${e.location ? ` (${e.location})` : ''}`);
  }
  lines.push('', `Yesterday's AI tasks (${d.results.length}):`);
  if (d.results.length === 0) lines.push('  none ran');
  for (const r of d.results) lines.push(r.status === 'succeeded' ? `  ✓ ${r.title}: ${oneLine(r.result ?? '')}` : `  ✗ ${r.title}: failed (${oneLine(r.error ?? '')})`);
  const total = d.runs.reduce((n, r) => n + r.n, 0);
  lines.push('', `Yesterday's background runs (${total}):`);
  if (total === 0) lines.push('  none');
  for (const r of d.runs) lines.push(`  ${r.task}: ${r.n} ${r.outcome.toLowerCase()}`);
  lines.push('');
  return { subject: `Your day, ${d.date}`, text: lines.join('\n') };
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 199)}…` : flat;
}
