// The platform scripts fail with one clear line that says what to do, not a stack of tool output.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/platform.ts';

const emptyCache = mkdtempSync(join(tmpdir(), 'bgtask-empty-cache-'));
afterAll(() => rmSync(emptyCache, { recursive: true, force: true }));

function script(name: string, args: string[], env: Record<string, string>) {
  const r = spawnSync('bash', [join(ROOT, 'hack', name), ...args], {
    env: { ...process.env, BGTASK_CACHE: emptyCache, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stderr: r.stderr.trim() };
}

describe('platform scripts on bad input', () => {
  it('says the Go module proxy is off instead of failing inside a build', () => {
    const r = script('build-toolchain.sh', ['kind'], { GOPROXY: 'off' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: GOPROXY is off: the toolchain is built from Go modules; set GOPROXY to a reachable module proxy');
  });

  it('says Go is missing when it is not on PATH', () => {
    const r = script('build-toolchain.sh', ['kind'], { PATH: '/usr/bin:/bin' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: Go is not installed/);
  });

  it('names the known components and profiles when given an unknown one', () => {
    expect(script('build-toolchain.sh', ['kubelet'], {}).stderr).toBe(
      'error: unknown component kubelet (known: kubernetes etcd pause coredns crictl kind helm promtool)',
    );
    expect(script('rootfs.sh', ['alpine'], {}).stderr).toBe(
      "error: unknown rootfs profile 'alpine' (kind-node, runtime, postgres, redis, kube-proxy)",
    );
  });

  it('says the module proxy does not answer when it cannot be reached', () => {
    // A closed loopback port: refused at once, so the bounded probe fails fast.
    const r = script('build-toolchain.sh', ['kind'], { GOPROXY: 'http://127.0.0.1:9' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: the Go module proxy http:\/\/127\.0\.0\.1:9 does not answer/);
  });
});
