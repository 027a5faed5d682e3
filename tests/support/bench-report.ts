// Benchmarks print their figures and append them to one report, so `make bench` ends with every
// figure of the run side by side.
import { appendFileSync } from 'node:fs';

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function report(title: string, rows: Array<[string, string | number]>): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  const text = [`# ${title}`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`), ''].join('\n');
  console.log(text);
  if (process.env.BENCH_REPORT) appendFileSync(process.env.BENCH_REPORT, `${text}\n`);
}
