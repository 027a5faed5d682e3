// The platform scripts fail with one clear line that says what to do, not a stack of tool output.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/platform.ts';

const emptyCache = mkdtempSync(join(tmpdir(), 'bgtask-empty-cache-'));
const fakeBin = mkdtempSync(join(tmpdir(), 'bgtask-fake-bin-'));
afterAll(() => {
  rmSync(emptyCache, { recursive: true, force: true });
  rmSync(fakeBin, { recursive: true, force: true });
});

/**
 * A PATH of the host's commands less `missing`, where `id -u` says 1000: host-deps.sh then names
 * what it would install instead of running apt-get.
 */
function pathWithout(missing: string[]): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    for (const name of readdirSync(dir)) {
      if (missing.includes(name) || name === 'id') continue;
      try {
        symlinkSync(join(dir, name), join(fakeBin, name));
      } catch {
        // already linked from an earlier directory (/bin is /usr/bin on merged-/usr Debian)
      }
    }
  }
  writeFileSync(join(fakeBin, 'id'), '#!/bin/sh\necho 1000\n');
  chmodSync(join(fakeBin, 'id'), 0o755);
  return fakeBin;
}

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

  it('host-deps.sh: refuses an unknown option, and --no-services leaves out the test tiers\' Redis (make up)', () => {
    expect(script('host-deps.sh', ['--bogus'], {})).toEqual({ code: 1, stderr: 'error: usage: ' + join(ROOT, 'hack/host-deps.sh') + ' [--no-services]' });
    const PATH = pathWithout(['redis-server']);
    const all = script('host-deps.sh', [], { PATH });
    expect(all.code).toBe(1);
    expect(all.stderr).toMatch(/^error: missing host packages: (postgresql-15 )?redis-server; install them: sudo apt-get install /);
    expect(script('host-deps.sh', ['--no-services'], { PATH })).toEqual({ code: 0, stderr: '' });
  });

  it('says the module proxy does not answer when it cannot be reached', () => {
    // A closed loopback port: refused at once, so the bounded probe fails fast.
    const r = script('build-toolchain.sh', ['kind'], { GOPROXY: 'http://127.0.0.1:9' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: the Go module proxy http:\/\/127\.0\.0\.1:9 does not answer/);
  });
});
