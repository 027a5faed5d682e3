import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { ApiException } from '@kubernetes/client-node';
import { KubeEventRecorder, REPORTING_CONTROLLER, microTime, type EventBody, type EventSink } from '../../operator/kube/events.ts';

/** Records what would be written; `missing` names Events the server has let expire. */
class RecordingSink implements EventSink {
  created: { namespace: string; body: EventBody }[] = [];
  patches: { namespace: string; name: string; series: { count: number; lastObservedTime: string } }[] = [];
  missing = new Set<string>();
  failCreates = 0;
  /** The status the failing creates answer with, or the error they throw. */
  failWith: number | Error = 500;
  /** Creates that are made but whose answer is lost (a connection reset). */
  loseAnswers = 0;

  async create(namespace: string, body: EventBody): Promise<void> {
    if (this.failCreates > 0) {
      this.failCreates--;
      throw typeof this.failWith === 'number' ? new ApiException(this.failWith, 'boom', {}, {}) : this.failWith;
    }
    if (this.created.some((c) => c.body.metadata.name === body.metadata.name)) throw new ApiException(409, 'already exists', {}, {});
    this.created.push({ namespace, body: structuredClone(body) });
    if (this.loseAnswers > 0) {
      this.loseAnswers--;
      throw new Error('socket hang up');
    }
  }

  async patchSeries(namespace: string, name: string, series: { count: number; lastObservedTime: string }): Promise<void> {
    if (this.missing.has(name)) throw new ApiException(404, 'not found', {}, {});
    this.patches.push({ namespace, name, series: { ...series } });
  }
}

const task = {
  apiVersion: 'workers.personal-assistant.io/v1alpha1',
  kind: 'BackgroundTask',
  metadata: { namespace: 'ns', name: 'digest', uid: 'u1', resourceVersion: '7' },
};

describe('KubeEventRecorder', () => {
  let now: number;
  let sink: RecordingSink;
  let recorder: KubeEventRecorder;

  beforeEach(() => {
    vi.useFakeTimers();
    now = Date.parse('2026-11-28T12:00:00Z');
    sink = new RecordingSink();
    recorder = new KubeEventRecorder({ sink, log: pino({ level: 'silent' }), instance: 'op-0', seriesWindowMs: 60_000, seriesFlushMs: 5_000, now: () => new Date(now) });
  });
  afterEach(() => vi.useRealTimers());

  it('writes an events.k8s.io/v1 Event regarding the object', async () => {
    recorder.record(task, 'Warning', 'RunFailed', 'exit code 1');
    await recorder.flush();
    expect(sink.created).toHaveLength(1);
    const { namespace, body } = sink.created[0]!;
    expect(namespace).toBe('ns');
    expect(body).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      type: 'Warning',
      reason: 'RunFailed',
      action: 'Reconcile',
      note: 'exit code 1',
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: 'op-0',
      eventTime: '2026-11-28T12:00:00.000000Z',
      regarding: { kind: 'BackgroundTask', name: 'digest', namespace: 'ns', uid: 'u1' },
    });
    expect(body.metadata.name).toMatch(/^digest\./);
    expect(body.series).toBeUndefined();
  });

  it('turns repeats within the window into one series update per flush interval', async () => {
    recorder.record(task, 'Warning', 'RunFailed', 'exit code 1');
    await recorder.flush();
    for (let i = 0; i < 5; i++) {
      now += 1000;
      recorder.record(task, 'Warning', 'RunFailed', 'exit code 1');
    }
    expect(sink.patches).toHaveLength(0); // batched
    await vi.advanceTimersByTimeAsync(5_000);
    await recorder.flush();
    expect(sink.created).toHaveLength(1);
    expect(sink.patches).toEqual([
      { namespace: 'ns', name: sink.created[0]!.body.metadata.name, series: { count: 6, lastObservedTime: microTime(new Date(now)) } },
    ]);
  });

  it('keeps different reasons, notes and objects apart', async () => {
    recorder.record(task, 'Warning', 'RunFailed', 'exit code 1');
    recorder.record(task, 'Warning', 'RunFailed', 'exit code 2');
    recorder.record(task, 'Normal', 'RunSucceeded', 'exit code 1');
    recorder.record({ ...task, metadata: { ...task.metadata, uid: 'u2' } }, 'Warning', 'RunFailed', 'exit code 1');
    await recorder.flush();
    expect(sink.created).toHaveLength(4);
  });

  it('starts a new Event once the window has passed', async () => {
    recorder.record(task, 'Normal', 'Scheduled', 'n');
    await recorder.flush();
    now += 61_000;
    recorder.record(task, 'Normal', 'Scheduled', 'n');
    await recorder.flush();
    expect(sink.created).toHaveLength(2);
    expect(sink.patches).toHaveLength(0);
  });

  it('re-creates an Event the server has expired instead of losing the series', async () => {
    recorder.record(task, 'Warning', 'RunFailed', 'x');
    await recorder.flush();
    sink.missing.add(sink.created[0]!.body.metadata.name);
    now += 1000;
    recorder.record(task, 'Warning', 'RunFailed', 'x');
    await recorder.flush();
    expect(sink.created).toHaveLength(2);
    expect(sink.created[1]!.body.metadata.name).not.toBe(sink.created[0]!.body.metadata.name);
  });

  it('a failed create is logged, not thrown, and retried with the series at the next repeat', async () => {
    sink.failCreates = 1;
    recorder.record(task, 'Warning', 'RunFailed', 'x');
    await recorder.flush();
    expect(recorder.stats.failures).toBe(1);
    expect(sink.created).toHaveLength(0);
    now += 1000;
    recorder.record(task, 'Warning', 'RunFailed', 'x');
    await recorder.flush();
    expect(sink.created).toHaveLength(1);
    expect(sink.created[0]!.body.series).toEqual({ count: 2, lastObservedTime: microTime(new Date(now)) });
  });

  it('tries a write that failed for a passing reason again, waiting twice as long each time', async () => {
    sink.failCreates = 2;
    sink.failWith = 503;
    recorder.record(task, 'Warning', 'RunFailed', 'x');
    await vi.advanceTimersByTimeAsync(0);
    expect(recorder.stats.failures).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(recorder.stats.failures).toBe(1); // the first try again waits a second
    await vi.advanceTimersByTimeAsync(1);
    expect(recorder.stats.failures).toBe(2);
    await vi.advanceTimersByTimeAsync(1999);
    expect(sink.created).toHaveLength(0); // the second, two
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.created).toHaveLength(1);
    expect(recorder.stats.retries).toBe(2);
  });

  it('does not try again what would fail the same way, and gives up after maxRetries', async () => {
    sink.failCreates = 1;
    sink.failWith = 403;
    recorder.record(task, 'Warning', 'RunFailed', 'forbidden');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sink.created).toHaveLength(0);
    expect(recorder.stats.retries).toBe(0);

    const few = new KubeEventRecorder({ sink, log: pino({ level: 'silent' }), instance: 'op-0', maxRetries: 2, now: () => new Date(now) });
    sink.failCreates = 10;
    sink.failWith = 429;
    few.record(task, 'Warning', 'RunFailed', 'throttled');
    await vi.advanceTimersByTimeAsync(120_000);
    expect(few.stats).toMatchObject({ failures: 3, retries: 2, created: 0 });
  });

  it('takes a create whose answer was lost as made when its try again finds it, and writes the series by update', async () => {
    sink.loseAnswers = 1;
    recorder.record(task, 'Warning', 'RunFailed', 'x');
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created).toHaveLength(1); // made, but the recorder does not know it
    now += 500;
    recorder.record(task, 'Warning', 'RunFailed', 'x');
    await vi.advanceTimersByTimeAsync(1000);
    await recorder.flush();
    expect(sink.created).toHaveLength(1);
    expect(sink.patches).toEqual([{ namespace: 'ns', name: sink.created[0]!.body.metadata.name, series: { count: 2, lastObservedTime: microTime(new Date(now)) } }]);
  });

  it('takes a request that timed out for a passing failure (its DOMException has code 23, no HTTP status)', async () => {
    sink.failCreates = 1;
    sink.failWith = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    recorder.record(task, 'Warning', 'RunFailed', 'x');
    await vi.advanceTimersByTimeAsync(1000);
    expect(recorder.stats).toMatchObject({ failures: 1, retries: 1, created: 1 });
  });

  it('does not schedule a try again while flushing at shutdown, and flushes one whose entry was evicted meanwhile', async () => {
    sink.failCreates = 1;
    recorder.record(task, 'Warning', 'RunFailed', 'at shutdown');
    await recorder.flush();
    expect(recorder.stats).toMatchObject({ failures: 1, retries: 0, created: 0 });

    const one = new KubeEventRecorder({ sink, log: pino({ level: 'silent' }), instance: 'op-0', maxEntries: 1, now: () => new Date(now) });
    sink.failCreates = 1;
    one.record(task, 'Warning', 'RunFailed', 'first');
    await vi.advanceTimersByTimeAsync(0); // failed, waiting for its try again
    one.record(task, 'Warning', 'RunFailed', 'second'); // evicts the first
    await one.flush();
    expect(sink.created.map((c) => c.body.note).sort()).toEqual(['first', 'second']);
  });

  it('flush tries again at once what waits for its backoff', async () => {
    sink.failCreates = 1;
    recorder.record(task, 'Warning', 'RunFailed', 'x');
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created).toHaveLength(0);
    await recorder.flush();
    expect(sink.created).toHaveLength(1);
  });

  it('forgets combinations not seen for a whole window', async () => {
    recorder.record(task, 'Normal', 'Old', 'n');
    await recorder.flush();
    now += 61_000;
    recorder.record(task, 'Normal', 'New', 'n');
    const entries = (recorder as unknown as { entries: Map<string, unknown> }).entries;
    expect(entries.size).toBe(1);
  });

  it('truncates long notes to the 1 kB the API allows', async () => {
    recorder.record(task, 'Warning', 'RunFailed', 'é'.repeat(2000));
    await recorder.flush();
    const note = sink.created[0]!.body.note;
    expect(Buffer.byteLength(note)).toBeLessThanOrEqual(1024);
    expect(note.endsWith('...')).toBe(true);
  });

  it('forgets the oldest combinations beyond maxEntries, flushing their pending counts', async () => {
    const small = new KubeEventRecorder({ sink, log: pino({ level: 'silent' }), instance: 'op-0', maxEntries: 2, seriesFlushMs: 60_000, now: () => new Date(now) });
    small.record(task, 'Normal', 'A', 'n');
    await small.flush();
    small.record(task, 'Normal', 'A', 'n'); // pending count 2
    small.record(task, 'Normal', 'B', 'n');
    small.record(task, 'Normal', 'C', 'n'); // evicts A, whose count is written now
    await small.flush();
    expect(sink.patches.map((p) => p.series.count)).toEqual([2]);
    small.record(task, 'Normal', 'A', 'n'); // A was forgotten: a new Event
    await small.flush();
    expect(sink.created.map((c) => c.body.reason)).toEqual(['A', 'B', 'C', 'A']);
  });
  describe('while the controller is busy', () => {
    /** Lets the microtasks of the recorder's write chains run (fake timers stay put). */
    const settle = () => vi.advanceTimersByTimeAsync(0);

    it('holds new Events until it is idle, then writes them in order', async () => {
      let busy = true;
      recorder.holdWhile(() => busy);
      recorder.record(task, 'Normal', 'CronJobCreated', 'a');
      recorder.record({ ...task, metadata: { ...task.metadata, name: 'other', uid: 'u2' } }, 'Normal', 'CronJobCreated', 'b');
      await vi.advanceTimersByTimeAsync(5_000);
      expect(sink.created).toEqual([]);
      busy = false;
      await vi.advanceTimersByTimeAsync(200);
      expect(sink.created.map((c) => c.body.note)).toEqual(['a', 'b']);
    });

    it('holds an Event no longer than maxHoldMs', async () => {
      const held = new KubeEventRecorder({ sink, log: pino({ level: 'silent' }), instance: 'op-0', maxHoldMs: 10_000, holdPollMs: 100, now: () => new Date(Date.now()) });
      held.holdWhile(() => true);
      held.record(task, 'Normal', 'First', 'n');
      await vi.advanceTimersByTimeAsync(6_000);
      held.record(task, 'Normal', 'Second', 'n');
      await vi.advanceTimersByTimeAsync(3_900);
      expect(sink.created).toEqual([]);
      await vi.advanceTimersByTimeAsync(200);
      expect(sink.created.map((c) => c.body.reason)).toEqual(['First']);
      await vi.advanceTimersByTimeAsync(6_000);
      expect(sink.created.map((c) => c.body.reason)).toEqual(['First', 'Second']);
    });

    it("writes a repeat made while held into the held create, and flush writes everything at once", async () => {
      recorder.holdWhile(() => true);
      recorder.record(task, 'Warning', 'RunFailed', 'n');
      recorder.record(task, 'Warning', 'RunFailed', 'n');
      await settle();
      expect(sink.created).toEqual([]);
      await recorder.flush();
      expect(sink.created).toHaveLength(1);
      expect(sink.created[0]!.body.series?.count).toBe(2);
      expect(sink.patches).toEqual([]);
    });

    it('writes a released burst a few at a time', async () => {
      let inFlight = 0;
      let most = 0;
      const slow: EventSink = {
        async create() {
          most = Math.max(most, ++inFlight);
          await new Promise((r) => setTimeout(r, 10));
          inFlight--;
        },
        async patchSeries() {},
      };
      const burst = new KubeEventRecorder({ sink: slow, log: pino({ level: 'silent' }), instance: 'op-0', maxInFlight: 3, now: () => new Date(Date.now()) });
      let busy = true;
      burst.holdWhile(() => busy);
      for (let i = 0; i < 20; i++) burst.record({ ...task, metadata: { ...task.metadata, name: `t${i}`, uid: `u${i}` } }, 'Normal', 'CronJobCreated', 'n');
      await vi.advanceTimersByTimeAsync(1_000);
      expect(most).toBe(0);
      busy = false;
      await vi.advanceTimersByTimeAsync(1_000);
      expect(burst.stats.created).toBe(20);
      expect(most).toBe(3);
    });

    it('writes a repeat recorded while its create was on its way in the next series update', async () => {
      let answer!: () => void;
      const slow: EventSink = {
        create: (_ns, body) => new Promise<void>((resolve) => (answer = () => (sink.created.push({ namespace: 'ns', body }), resolve()))),
        patchSeries: (ns, name, series) => sink.patchSeries(ns, name, series),
      };
      const r = new KubeEventRecorder({ sink: slow, log: pino({ level: 'silent' }), instance: 'op-0', seriesFlushMs: 5_000, now: () => new Date(now) });
      r.record(task, 'Warning', 'RunFailed', 'n');
      await settle();
      r.record(task, 'Warning', 'RunFailed', 'n'); // the create is still on its way
      answer();
      await settle();
      expect(sink.created[0]!.body.series).toBeUndefined();
      await vi.advanceTimersByTimeAsync(5_000);
      expect(sink.patches.map((p) => p.series.count)).toEqual([2]);
    });

    it('writes at once when the controller is idle', async () => {
      recorder.holdWhile(() => false);
      recorder.record(task, 'Normal', 'CronJobCreated', 'n');
      await settle();
      expect(sink.created).toHaveLength(1);
    });
  });
});
