import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, parseListenAddress, resolveSettings } from '../../operator/cli.ts';
import { runnerSettings } from '../../operator/main.ts';
import { ROOT } from '../support/platform.ts';

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
      crdCheckSeconds: 300,
    });
    expect(s.kubeconfig).toBeUndefined();
    expect(resolveSettings({ runnerImage: 'r' }, { CRD_CHECK_SECONDS: '0' }).crdCheckSeconds).toBe(0);
    expect(resolveSettings({ leaderElect: true, runnerImage: 'r' }, {}).leaderElect).toBe(true);
    expect(resolveSettings({ runnerImage: 'r' }, { LEADER_ELECT: '0' }).leaderElect).toBe(false);
  });

  it('names every invalid setting with its flag and variable', () => {
    let message = '';
    try {
      resolveSettings({ workers: '0', namespace: 'Bad_NS', metricsAddr: 'x:y', crdCheckSeconds: '-1' }, {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('--runner-image (RUNNER_IMAGE): is required');
    expect(message).toContain('--workers (WORKERS)');
    expect(message).toContain('--namespace (WATCH_NAMESPACE): must be a namespace name');
    expect(message).toContain('--metrics-addr (METRICS_ADDR): "x:y" is not a port or host:port');
    expect(message).toContain('--crd-check-seconds (CRD_CHECK_SECONDS)');
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

describe('operator crd', () => {
  /** Runs main() with stdout and stderr captured. */
  async function capture(argv: string[]): Promise<{ code: number; stdout: string; stderr: string; log: Record<string, any>[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const log: Record<string, any>[] = [];
    const logTo = { write: (line: string) => void log.push(JSON.parse(line)) };
    const [writeOut, writeErr] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
    process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      const code = await main(['node', 'operator', ...argv], {}, { logTo });
      return { code, stdout: out.join(''), stderr: err.join(''), log };
    } finally {
      process.stdout.write = writeOut;
      process.stderr.write = writeErr;
    }
  }

  it('print writes the CRD the chart ships, byte for byte', async () => {
    const r = await capture(['crd', 'print']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(ROOT, 'charts/bgtask-operator/crds/workers.personal-assistant.io_backgroundtasks.yaml'), 'utf8'));
  });

  it('apply fails with exit 1 and a one-line reason, its cause included, when there is no cluster to reach', async () => {
    const r = await capture(['crd', 'apply', '--kubeconfig', '/nonexistent/kubeconfig']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('operator: could not load the kubeconfig /nonexistent/kubeconfig: ENOENT: no such file or directory, open \'/nonexistent/kubeconfig\'\n');
    // and one JSON log line with the error and its cause, for the log pipeline
    expect(r.log).toEqual([expect.objectContaining({ level: 'error', msg: 'applying the CRD failed', err: expect.objectContaining({ message: expect.stringContaining('could not load the kubeconfig'), cause: expect.objectContaining({ code: 'ENOENT' }) }) })]);
  });

  it('apply refuses a bad timeout before it connects, with exit 2', async () => {
    const r = await capture(['crd', 'apply', '--timeout-seconds', '0', '--kubeconfig', '/nonexistent']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--timeout-seconds: .*>=1/);
  });
});

describe('runner pod settings (--runner-*)', () => {
  const base = { runnerImage: 'r' };
  const problem = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string => {
    try {
      resolveSettings({ ...base, ...flags }, env);
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };

  it('parses env, envFrom, volumes, mounts and the pull policy from JSON flags or their variables', () => {
    const db = { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'bgtask-db', key: 'database-url', optional: true } } };
    const s = resolveSettings(
      { ...base, runnerEnv: JSON.stringify([db, { name: 'EMAIL_FROM', value: 'me@example.com' }]), runnerImagePullPolicy: 'Always' },
      {
        RUNNER_ENV_FROM: '[{"secretRef":{"name":"llm"}},{"configMapRef":{"name":"settings"},"prefix":"APP_"}]',
        RUNNER_VOLUMES: '[{"name":"plugins","configMap":{"name":"my-plugins"}}]',
        RUNNER_VOLUME_MOUNTS: '[{"name":"plugins","mountPath":"/plugins","readOnly":true}]',
        RUNNER_IMAGE_PULL_POLICY: 'Never',
      },
    );
    expect(s.runnerEnv).toEqual([db, { name: 'EMAIL_FROM', value: 'me@example.com' }]);
    expect(s.runnerEnvFrom).toEqual([{ secretRef: { name: 'llm' } }, { configMapRef: { name: 'settings' }, prefix: 'APP_' }]);
    expect(s.runnerVolumes).toEqual([{ name: 'plugins', configMap: { name: 'my-plugins' } }]);
    expect(s.runnerVolumeMounts).toEqual([{ name: 'plugins', mountPath: '/plugins', readOnly: true }]);
    expect(s.runnerImagePullPolicy).toBe('Always'); // the flag over its variable
  });

  it('leaves them unset by default, and an empty variable is no setting', () => {
    const s = resolveSettings(base, { RUNNER_ENV: '', RUNNER_ENV_FROM: '' });
    expect([s.runnerEnv, s.runnerEnvFrom, s.runnerVolumes, s.runnerVolumeMounts, s.runnerImagePullPolicy]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(resolveSettings(base, { RUNNER_ENV: '[]' }).runnerEnv).toEqual([]);
  });

  it.each([
    ['bad JSON', { runnerEnv: '[{"name":' }, /^invalid settings: --runner-env \(RUNNER_ENV\): is not valid JSON: /],
    ['not a list', { runnerEnvFrom: '{"secretRef":{"name":"x"}}' }, /--runner-env-from \(RUNNER_ENV_FROM\): must be a JSON list$/],
    ['a variable without a name', { runnerEnv: '[{"value":"x"}]' }, /--runner-env \(RUNNER_ENV\): \[0\]\.name: /],
    ['a misspelt field', { runnerEnv: '[{"name":"A","valuefrom":{}}]' }, /--runner-env \(RUNNER_ENV\): \[0\]: Unrecognized key: "valuefrom"/],
    ['value and valueFrom', { runnerEnv: '[{"name":"A","value":"1","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]' }, /\[0\]: must not set both value and valueFrom/],
    ['a secretKeyRef without key', { runnerEnv: '[{"name":"A","valueFrom":{"secretKeyRef":{"name":"s"}}}]' }, /--runner-env \(RUNNER_ENV\): \[0\]\.valueFrom\.secretKeyRef\.key: /],
    ['the same variable twice', { runnerEnv: '[{"name":"A","value":"1"},{"name":"A","value":"2"}]' }, /\[1\]: variable "A" given twice/],
    ['envFrom with two sources', { runnerEnvFrom: '[{"secretRef":{"name":"a"},"configMapRef":{"name":"b"}}]' }, /--runner-env-from \(RUNNER_ENV_FROM\): \[0\]: must set exactly one of secretRef or configMapRef/],
    ['a Secret name that is none', { runnerEnvFrom: '[{"secretRef":{"name":"Bad_Name"}}]' }, /\[0\]\.secretRef\.name: must be a Secret or ConfigMap name/],
    ['a volume without a source', { runnerVolumes: '[{"name":"plugins"}]' }, /--runner-volumes \(RUNNER_VOLUMES\): \[0\]: must have a name and exactly one volume source/],
    ['the scratch volume\'s name', { runnerVolumes: '[{"name":"tmp","emptyDir":{}}]' }, /--runner-volumes \(RUNNER_VOLUMES\): \[0\]\.name: volume name "tmp"/],
    ['a relative mount path', { runnerVolumes: '[{"name":"p","emptyDir":{}}]', runnerVolumeMounts: '[{"name":"p","mountPath":"plugins"}]' }, /--runner-volume-mounts \(RUNNER_VOLUME_MOUNTS\): \[0\]\.mountPath: must be an absolute path/],
    ['a mount of an undefined volume', { runnerVolumeMounts: '[{"name":"plugins","mountPath":"/plugins"}]' }, /--runner-volume-mounts \(RUNNER_VOLUME_MOUNTS\): \[0\]\.name: mounts volume "plugins", which --runner-volumes does not define/],
    ['an unknown pull policy', { runnerImagePullPolicy: 'Sometimes' }, /--runner-image-pull-policy \(RUNNER_IMAGE_PULL_POLICY\): /],
  ])('refuses %s, naming the flag and the place', (_name, flags, message) => {
    expect(problem(flags)).toMatch(message);
  });

  it('names the variable when the bad value came from the environment, and exits 2', async () => {
    expect(problem({}, { RUNNER_ENV_FROM: 'secretRef: x' })).toMatch(/--runner-env-from \(RUNNER_ENV_FROM\): is not valid JSON/);
    const stderr: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (stderr.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      expect(await main(['node', 'operator', 'run', '--runner-image', 'r', '--runner-env', 'nope'], {})).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(stderr.join('')).toMatch(/--runner-env \(RUNNER_ENV\): is not valid JSON/);
  });

  it('become the RunnerSettings of the reconciler; TASK_PLUGINS comes first unless --runner-env sets it', () => {
    const s = resolveSettings(
      {
        ...base,
        runnerEnv: '[{"name":"REDIS_URL","valueFrom":{"secretKeyRef":{"name":"r","key":"redis-url"}}}]',
        runnerEnvFrom: '[{"secretRef":{"name":"llm"}}]',
        runnerVolumes: '[{"name":"p","configMap":{"name":"plugins"}}]',
        runnerVolumeMounts: '[{"name":"p","mountPath":"/plugins"}]',
        runnerImagePullPolicy: 'IfNotPresent',
      },
      { TASK_PLUGINS: '/plugins/extra.mjs' },
    );
    expect(runnerSettings(s)).toEqual({
      runnerImage: 'r',
      runnerServiceAccount: 'bgtask-runner',
      imagePullPolicy: 'IfNotPresent',
      env: [{ name: 'TASK_PLUGINS', value: '/plugins/extra.mjs' }, { name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'r', key: 'redis-url' } } }],
      envFrom: [{ secretRef: { name: 'llm' } }],
      volumes: [{ name: 'p', configMap: { name: 'plugins' } }],
      volumeMounts: [{ name: 'p', mountPath: '/plugins' }],
    });
    const own = resolveSettings({ ...base, runnerEnv: '[{"name":"TASK_PLUGINS","value":"/other.mjs"}]' }, { TASK_PLUGINS: '/plugins/extra.mjs' });
    expect(runnerSettings(own).env).toEqual([{ name: 'TASK_PLUGINS', value: '/other.mjs' }]);
    expect(runnerSettings(resolveSettings(base, {}))).toEqual({ runnerImage: 'r', runnerServiceAccount: 'bgtask-runner' });
  });
});
