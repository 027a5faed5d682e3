// Benchmarks print their figures and append them to one report, so `make bench` ends with every
// figure of the run side by side.
import { appendFileSync } from 'node:fs';

export function report(title: string, rows: Array<[string, string | number]>): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  const text = [`# ${title}`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`), ''].join('\n');
  console.log(text);
  if (process.env.BENCH_REPORT) appendFileSync(process.env.BENCH_REPORT, `${text}\n`);
}
