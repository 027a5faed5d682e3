import { describe, expect, it } from 'vitest';
import { main, parseListenAddress, resolveSettings } from '../../operator/cli.ts';

describe('operator settings', () => {
  it('takes defaults, environment variables, and flags over them', () => {
    const s = resolveSettings({ workers: '8' }, { RUNNER_IMAGE: 'runner:1', WORKERS: '2', WATCH_NAMESPACE: 'apps', LEADER_ELECT: 'true' });
    expect(s).toMatchObject({
      runnerImage: 'runner:1',
      workers: 8,
      namespace: 'apps',
      leaderElect: true,
      leaseName: 'bgtask-operator',
      metricsAddr: { port: 8080 },
      healthAddr: { port: 8081 },
      runnerServiceAccount: 'bgtask-runner',
      familiesConfigmap: 'bgtask-families',
      logLevel: 'info',
      watchStallSeconds: 90,
    });
    expect(s.kubeconfig).toBeUndefined();
    expect(resolveSettings({ leaderElect: true, runnerImage: 'r' }, {}).leaderElect).toBe(true);
    expect(resolveSettings({ runnerImage: 'r' }, { LEADER_ELECT: '0' }).leaderElect).toBe(false);
  });

  it('names every invalid setting with its flag and variable', () => {
    let message = '';
    try {
      resolveSettings({ workers: '0', namespace: 'Bad_NS', metricsAddr: 'x:y' }, {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('--runner-image (RUNNER_IMAGE): is required');
    expect(message).toContain('--workers (WORKERS)');
    expect(message).toContain('--namespace (WATCH_NAMESPACE): must be a namespace name');
    expect(message).toContain('--metrics-addr (METRICS_ADDR): "x:y" is not a port or host:port');
  });

  it('parses listen addresses', () => {
    expect(parseListenAddress('8080')).toEqual({ port: 8080 });
    expect(parseListenAddress(':9090')).toEqual({ port: 9090 });
    expect(parseListenAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(() => parseListenAddress('70000')).toThrow();
    expect(() => parseListenAddress('http')).toThrow();
  });

  it('exits 2 on bad flags without starting anything', async () => {
    const stderr: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (stderr.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      expect(await main(['node', 'operator', 'run', '--workers', 'many'], {})).toBe(2);
      expect(await main(['node', 'operator', 'run', '--no-such-flag'], {})).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(stderr.join('')).toMatch(/--workers/);
  });
});
