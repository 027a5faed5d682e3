import { describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import {
  DEFAULT_FAMILIES,
  FamiliesConfigError,
  FamiliesConfigHolder,
  changedFamilies,
  parseFamiliesConfig,
} from '../../operator/config/families.ts';

describe('default families (the seed plan\'s docker-compose workers)', () => {
  it.each([
    { family: 'ai', concurrency: 1, requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
    { family: 'email', concurrency: 4, requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    { family: 'file', concurrency: 2, requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    { family: 'sync', concurrency: 2, requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    { family: 'maintenance', concurrency: 1, requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
  ] as const)('$family', ({ family, concurrency, requests, limits }) => {
    expect(DEFAULT_FAMILIES[family]).toEqual({ concurrency, resources: { requests, limits } });
  });
});

describe('parseFamiliesConfig', () => {
  it('takes the defaults for what the file leaves out', () => {
    expect(parseFamiliesConfig('')).toEqual(DEFAULT_FAMILIES);
    const config = parseFamiliesConfig('ai:\n  concurrency: 3\n  resources:\n    limits:\n      memory: 2Gi\n');
    expect(config.ai).toEqual({
      concurrency: 3,
      resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '500m', memory: '2Gi' } },
    });
    expect(config.email).toEqual(DEFAULT_FAMILIES.email);
  });

  it('reads JSON too, and numbers as quantities', () => {
    const config = parseFamiliesConfig('{"file": {"resources": {"limits": {"cpu": 2}}, "priorityClassName": "batch-low"}}');
    expect(config.file.resources.limits.cpu).toBe('2');
    expect(config.file.priorityClassName).toBe('batch-low');
  });

  it('carries placement: node selector and tolerations', () => {
    const config = parseFamiliesConfig(`
sync:
  nodeSelector: { workload: batch }
  tolerations:
    - { key: dedicated, operator: Equal, value: batch, effect: NoSchedule }
`);
    expect(config.sync.nodeSelector).toEqual({ workload: 'batch' });
    expect(config.sync.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'batch', effect: 'NoSchedule' }]);
  });

  it.each([
    { name: 'an unknown family', text: 'video:\n  concurrency: 1\n', message: 'video' },
    { name: 'an unknown field (a typo)', text: 'ai:\n  concurency: 2\n', message: 'concurency' },
    { name: 'a negative concurrency', text: 'ai:\n  concurrency: -1\n', message: 'ai.concurrency' },
    { name: 'a bad quantity', text: 'ai:\n  resources:\n    limits:\n      memory: lots\n', message: 'ai.resources.limits.memory' },
    { name: 'a negative quantity', text: 'file:\n  resources:\n    requests:\n      cpu: -500m\n', message: 'file.resources.requests.cpu: must not be negative' },
    { name: 'a request above its limit', text: 'email:\n  resources:\n    requests:\n      memory: 2Gi\n', message: 'email.resources: the memory request 2Gi exceeds its limit 1Gi' },
    { name: 'YAML that does not parse', text: 'ai: [\n', message: 'not valid YAML' },
    { name: 'a list at the top', text: '- ai\n', message: '(file)' },
  ])('refuses $name', ({ text, message }) => {
    expect(() => parseFamiliesConfig(text)).toThrow(FamiliesConfigError);
    expect(() => parseFamiliesConfig(text)).toThrow(message);
  });
});

describe('changedFamilies', () => {
  it('names exactly the families whose config differs', () => {
    const next = parseFamiliesConfig('ai: { concurrency: 2 }\nsync: { nodeSelector: { a: b } }\n');
    expect(changedFamilies(DEFAULT_FAMILIES, next)).toEqual(['ai', 'sync']);
    expect(changedFamilies(next, next)).toEqual([]);
  });

  it('ignores key order', () => {
    // A nodeSelector keeps the order it was written in (resources are rebuilt over the defaults' keys).
    const a = parseFamiliesConfig('file: { nodeSelector: { zone: a, disk: ssd } }');
    const b = parseFamiliesConfig('file: { nodeSelector: { disk: ssd, zone: a } }');
    expect(Object.keys(a.file.nodeSelector ?? {})).not.toEqual(Object.keys(b.file.nodeSelector ?? {}));
    expect(changedFamilies(a, b)).toEqual([]);
  });
});

describe('FamiliesConfigHolder', () => {
  const configMap = (text?: string) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'bgtask-families', namespace: 'bgtask-system', uid: 'u1' },
    ...(text === undefined ? {} : { data: { 'families.yaml': text } }),
  });
  const make = () => {
    const events = { record: vi.fn(), flush: vi.fn() };
    const holder = new FamiliesConfigHolder({ log: pino({ level: 'silent' }), events });
    return { holder, events };
  };

  it('applies a good config and says which families changed', () => {
    const { holder, events } = make();
    expect(holder.update(configMap('email: { concurrency: 8 }'))).toEqual({ ok: true, changed: ['email'] });
    expect(holder.current().email.concurrency).toBe(8);
    expect(events.record).not.toHaveBeenCalled();
  });

  it('keeps the last good config when a bad one arrives, and reports it with a Warning Event', () => {
    const { holder, events } = make();
    holder.update(configMap('email: { concurrency: 8 }'));
    const result = holder.update(configMap('email: { concurrency: many }'));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toBeInstanceOf(FamiliesConfigError);
    expect(holder.current().email.concurrency).toBe(8);
    expect(events.record).toHaveBeenCalledWith(
      expect.objectContaining({ kind: 'ConfigMap' }),
      'Warning',
      'InvalidFamiliesConfig',
      expect.stringContaining('email.concurrency'),
      'LoadConfig',
    );
  });

  it('is unusable while its first version is refused (the defaults are nobody\'s choice), and usable from the first good one on', async () => {
    const { holder, events } = make();
    expect(holder.unusable()).toBeUndefined(); // no ConfigMap at all: the defaults are the config
    holder.update(configMap('email: { concurrency: many }'));
    expect(holder.unusable()).toMatch(/^families config refused and no earlier valid one to keep: .*email\.concurrency/);
    expect(events.record).toHaveBeenCalledWith(expect.anything(), 'Warning', 'InvalidFamiliesConfig', expect.stringContaining('waits for one'), 'LoadConfig');
    let usable = false;
    const waiting = holder.usable(new AbortController().signal).then(() => (usable = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(usable).toBe(false);
    holder.update(configMap('email: { concurrency: 3 }'));
    await waiting;
    expect(holder.unusable()).toBeUndefined();
    // A bad version after a good one keeps the good one, and stays usable.
    holder.update(configMap('email: { concurrency: many }'));
    expect(holder.unusable()).toBeUndefined();
    expect(holder.current().email.concurrency).toBe(3);
  });

  it('stops waiting for a usable config when told to stop', async () => {
    const { holder } = make();
    holder.update(configMap('email: [unclosed'));
    const stop = new AbortController();
    const waiting = holder.usable(stop.signal);
    stop.abort(new Error('SIGTERM'));
    await expect(waiting).rejects.toThrow('SIGTERM');
  });

  it('goes back to the defaults when the ConfigMap or its key is gone', () => {
    const { holder } = make();
    holder.update(configMap('maintenance: { concurrency: 0 }'));
    expect(holder.update(configMap())).toEqual({ ok: true, changed: ['maintenance'] });
    holder.update(configMap('maintenance: { concurrency: 0 }'));
    expect(holder.update(undefined)).toEqual({ ok: true, changed: ['maintenance'] });
    expect(holder.current()).toEqual(DEFAULT_FAMILIES);
  });
});
