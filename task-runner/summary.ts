import type { SummaryValue } from './task.ts';

const KEY = /^[a-z][a-z0-9_]{0,62}$/;
// Limits of status.lastRun.summary in the CRD: the apiserver would refuse the whole report.
export const MAX_SUMMARY_KEYS = 64;
export const MAX_SUMMARY_STRING = 1024;

/** The run's result counters: what `ctx.count`/`ctx.set` write and `status.lastRun.summary` shows. */
export class Summary {
  readonly #values = new Map<string, SummaryValue>();

  count(name: string, n = 1): void {
    checkKey(name);
    if (!Number.isFinite(n)) throw new TypeError(`summary counter "${name}": ${n} is not a finite number`);
    this.#checkRoom(name);
    const current = this.#values.get(name) ?? 0;
    if (typeof current !== 'number') throw new TypeError(`summary "${name}" holds a ${typeof current}, not a counter`);
    this.#values.set(name, current + n);
  }

  set(name: string, value: SummaryValue): void {
    checkKey(name);
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`summary "${name}": ${value} is not a finite number`);
    if (!['number', 'string', 'boolean'].includes(typeof value)) throw new TypeError(`summary "${name}" must be a number, string or boolean`);
    if (typeof value === 'string' && value.length > MAX_SUMMARY_STRING) {
      throw new TypeError(`summary "${name}" is ${value.length} characters long; at most ${MAX_SUMMARY_STRING} fit`);
    }
    this.#checkRoom(name);
    this.#values.set(name, value);
  }

  #checkRoom(name: string): void {
    if (!this.#values.has(name) && this.#values.size >= MAX_SUMMARY_KEYS) {
      throw new TypeError(`summary "${name}": a summary holds at most ${MAX_SUMMARY_KEYS} keys`);
    }
  }

  toJSON(): Record<string, SummaryValue> {
    return Object.fromEntries([...this.#values].sort(([a], [b]) => a.localeCompare(b)));
  }
}

function checkKey(name: string): void {
  // snake_case keys read well in `kubectl get -o yaml` and in task_runs.summary.
  if (!KEY.test(name)) throw new TypeError(`summary key "${name}" must be snake_case (${KEY.source})`);
}
