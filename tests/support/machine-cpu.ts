// The whole machine's CPU time, from /proc/stat: every process on it (the kind node's apiserver,
// etcd and controllers, kubectl, the benchmark itself) shares the same cores, so a run that keeps
// them all busy cannot end sooner than its CPU time divided by the number of cores.
import { readFileSync } from 'node:fs';

export interface CpuSample {
  /** Seconds of CPU this machine spent working (user, nice, system, irq, softirq), all cores. */
  busy: number;
  /** Seconds the hypervisor gave this machine's cores to others while they had work (steal). */
  steal: number;
  cores: number;
}

/** USER_HZ: /proc/stat counts in clock ticks of 1/100 s on Linux. */
const TICKS_PER_SECOND = 100;

export function sampleMachineCpu(stat = readFileSync('/proc/stat', 'utf8')): CpuSample {
  const total = /^cpu\s+(.*)$/m.exec(stat);
  if (!total) throw new Error('/proc/stat has no aggregate "cpu" line');
  // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is already in user.
  const fields = total[1]!.trim().split(/\s+/).map(Number);
  if (fields.length < 8 || fields.some((v) => !Number.isFinite(v))) throw new Error(`/proc/stat: unreadable cpu line "${total[0]}"`);
  const [user, nice, system, , , irq, softirq, steal] = fields as [number, number, number, number, number, number, number, number];
  const cores = stat.match(/^cpu\d+\s/gm)?.length ?? 0;
  if (cores === 0) throw new Error('/proc/stat lists no cpuN lines');
  return { busy: (user + nice + system + irq + softirq) / TICKS_PER_SECOND, steal: steal / TICKS_PER_SECOND, cores };
}

/** The CPU spent between two samples. */
export function cpuBetween(from: CpuSample, to: CpuSample): CpuSample {
  return { busy: to.busy - from.busy, steal: to.steal - from.steal, cores: to.cores };
}

/**
 * Waits until the machine has been nearly idle (at most `maxBusyCores` cores busy on average) over
 * a whole `windowMs`, so a measurement does not start while earlier work (a namespace still being
 * emptied, a compaction) is running. Returns the busy cores of the last window; after `timeoutMs`
 * it gives up and returns that figure anyway, for the caller to report.
 */
export async function waitForQuietMachine(opts: { maxBusyCores?: number; windowMs?: number; timeoutMs?: number } = {}): Promise<{ busyCores: number; quiet: boolean }> {
  const { maxBusyCores = 0.3, windowMs = 2_000, timeoutMs = 120_000 } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const from = sampleMachineCpu();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const busyCores = cpuBetween(from, sampleMachineCpu()).busy / (windowMs / 1000);
    if (busyCores <= maxBusyCores) return { busyCores, quiet: true };
    if (Date.now() >= deadline) return { busyCores, quiet: false };
  }
}
