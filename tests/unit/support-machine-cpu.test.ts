import { describe, expect, it } from 'vitest';
import { cpuBetween, sampleMachineCpu, waitForQuietMachine } from '../support/machine-cpu.ts';

const stat = (user: number, system: number, idle: number, steal: number) =>
  [
    `cpu  ${user} 5 ${system} ${idle} 40 0 10 ${steal} 0 0`,
    `cpu0 ${user / 2} 2 ${system / 2} ${idle / 2} 20 0 5 ${steal / 2} 0 0`,
    `cpu1 ${user / 2} 3 ${system / 2} ${idle / 2} 20 0 5 ${steal / 2} 0 0`,
    'intr 1 2 3',
    'ctxt 99',
  ].join('\n');

describe('sampleMachineCpu', () => {
  it('counts user, nice, system, irq and softirq as busy, steal apart, idle and iowait not at all', () => {
    const s = sampleMachineCpu(stat(1000, 500, 9000, 200));
    expect(s.busy).toBeCloseTo((1000 + 5 + 500 + 0 + 10) / 100);
    expect(s.steal).toBeCloseTo(2);
    expect(s.cores).toBe(2);
  });

  it('gives the CPU spent between two samples', () => {
    const d = cpuBetween(sampleMachineCpu(stat(1000, 500, 9000, 200)), sampleMachineCpu(stat(2600, 900, 9100, 300)));
    expect(d.busy).toBeCloseTo(20);
    expect(d.steal).toBeCloseTo(1);
    expect(d.cores).toBe(2);
  });

  it('refuses text that is not /proc/stat', () => {
    expect(() => sampleMachineCpu('intr 1 2 3\n')).toThrow(/no aggregate "cpu" line/);
    expect(() => sampleMachineCpu('cpu  1 2 x 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\n')).toThrow(/unreadable cpu line/);
    expect(() => sampleMachineCpu('cpu  1 2 3 4 5 6 7 8\n')).toThrow(/no cpuN lines/);
  });

  it('reads this machine', () => {
    const s = sampleMachineCpu();
    expect(s.cores).toBeGreaterThan(0);
    expect(s.busy).toBeGreaterThan(0);
  });
});

describe('waitForQuietMachine', () => {
  it('returns once a window is below the threshold, and gives up after its timeout when none is', async () => {
    // Any threshold above the core count is met by the first window; a negative one never is.
    const met = await waitForQuietMachine({ maxBusyCores: 1_000, windowMs: 50, timeoutMs: 1_000 });
    expect(met.quiet).toBe(true);
    const started = Date.now();
    const never = await waitForQuietMachine({ maxBusyCores: -1, windowMs: 50, timeoutMs: 200 });
    expect(never.quiet).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });
});
