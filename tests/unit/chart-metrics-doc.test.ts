// The chart README's Metrics table lists every metric the operator registers, with its labels:
// a metric added or relabelled without its line fails here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../operator/metrics.ts';

const README = readFileSync(new URL('../../charts/bgtask-operator/README.md', import.meta.url), 'utf8');

function documented(): Map<string, string[]> {
  const section = README.split('\n## Metrics\n')[1]?.split('\n## ')[0] ?? '';
  const rows = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    const m = /^\| `(bgtask_\w+)`[^|]*\|([^|]*)\|/.exec(line);
    // The labels column: each label in backticks, its values in parentheses after it.
    if (m) rows.set(m[1]!, [...m[2]!.replace(/\([^)]*\)/g, '').matchAll(/`(\w+)`/g)].map((l) => l[1]!));
  }
  return rows;
}

describe('chart README Metrics table', () => {
  it('names every metric of the operator with exactly its labels', () => {
    const registered = createMetrics({ defaultMetrics: false })
      .registry.getMetricsAsArray()
      .map((m) => ({ name: m.name, labels: [...((m as unknown as { labelNames: readonly string[] }).labelNames ?? [])] }));
    const rows = documented();
    expect(registered.length).toBeGreaterThan(10);
    for (const { name, labels } of registered) {
      expect(rows.has(name), `${name} is not in the chart README's Metrics table`).toBe(true);
      expect(rows.get(name)!.sort(), `labels of ${name}`).toEqual(labels.sort());
    }
    expect([...rows.keys()].sort()).toEqual(registered.map((m) => m.name).sort());
  });
});
