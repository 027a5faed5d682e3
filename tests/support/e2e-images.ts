// The e2e tier's fixture images: the product images with the test plugin
// (tests/fixtures/plugins/operator-test-tasks.mjs: a task that succeeds, fails, sleeps or
// allocates memory as its params say) at /plugins, and the runner's with the e2e SMTP server
// (tests/fixtures/smtp-sink) at /fixtures. TASK_PLUGINS names one file for the operator
// and every run; the operator cannot mount a volume into runs, and a data: URL cannot pass
// through TASK_PLUGINS (a comma-separated list), so the file is baked in.
import { spawnSync } from 'node:child_process';
import { buildSync } from 'esbuild';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, cacheDir } from './platform.ts';

export const FIXTURE_PLUGIN = '/plugins/operator-test-tasks.mjs';
/** The e2e SMTP server (tests/fixtures/smtp-sink), bundled into the fixture runner image. */
export const SMTP_SINK_PROGRAM = '/fixtures/smtp-sink.mjs';
export const FIXTURE_TAG = 'e2e';

function run(cmd: string, args: string[], cwd?: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, DOCKER_BUILDKIT: '0' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
}

/** The kind binary and cluster name, as hack/lib.sh derives them. */
function kind(): { bin: string; cluster: string } {
  const version = /^KIND_VERSION=(\S+)$/m.exec(readFileSync(join(ROOT, 'hack/versions.env'), 'utf8'))?.[1];
  if (!version) throw new Error('hack/versions.env has no KIND_VERSION');
  return { bin: join(cacheDir(), `kind-${version}`, 'bin', 'kind'), cluster: process.env.BGTASK_CLUSTER || 'bgtask' };
}

/** Builds bgtask.local/{operator,task-runner}:e2e on the :dev images and loads them into kind. */
export function ensureFixtureImages(): void {
  const context = mkdtempSync(join(tmpdir(), 'bgtask-e2e-images-'));
  try {
    copyFileSync(join(ROOT, 'tests/fixtures/plugins/operator-test-tasks.mjs'), join(context, 'operator-test-tasks.mjs'));
    buildSync({
      entryPoints: [join(ROOT, 'tests/fixtures/smtp-sink/main.ts')],
      outfile: join(context, 'smtp-sink.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      // smtp-server and nodemailer are CommonJS and require node's modules.
      banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
      logLevel: 'error',
    });
    const tags: string[] = [];
    for (const image of ['operator', 'task-runner']) {
      const dockerfile = join(context, `${image}.Dockerfile`);
      const sink = image === 'task-runner' ? `COPY smtp-sink.mjs ${SMTP_SINK_PROGRAM}\n` : '';
      writeFileSync(dockerfile, `FROM bgtask.local/${image}:dev\nCOPY operator-test-tasks.mjs ${FIXTURE_PLUGIN}\n${sink}`);
      const tag = `bgtask.local/${image}:${FIXTURE_TAG}`;
      run('docker', ['build', '-q', '-f', dockerfile, '-t', tag, context]);
      tags.push(tag);
    }
    // kind skips an image whose ID the node already has.
    const { bin, cluster } = kind();
    run(bin, ['load', 'docker-image', '--name', cluster, ...tags]);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}
