// Bundles each program of the repo with esbuild into dist/: one ESM entry file per program, its
// lazily loaded code (task modules' heavy imports, pg, ioredis, node-pg-migrate) split into its own
// chunk folder, and the files it reads at run time copied beside it. Each program is built on its
// own, so an image copies only its program's files.
//
// Builds may run while tests, benchmarks or another build use dist/ (helpers share a checkout), so
// nothing in dist/ is ever missing or half written: esbuild writes into a staging folder beside
// dist/ (the same depth, so source maps' relative paths hold), and its files are renamed into place,
// chunks first and the entry file last. Chunk names carry their content's hash, so a chunk an older
// entry still imports stays until it has been unused for CHUNK_GRACE_MS.
// Usage: node hack/build.mjs [name...]   (default: every program)
// BGTASK_DIST_DIR builds elsewhere than <repo>/dist (the build's own test does).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const DIST = resolve(process.env.BGTASK_DIST_DIR ?? join(ROOT, 'dist'));
/** How long a chunk no build references is kept for processes started from an older entry file. */
const CHUNK_GRACE_MS = 15 * 60_000;

/**
 * The programs. `entry` becomes dist/<name>.mjs, its chunks go to dist/chunks/<name>/, and each
 * asset is copied to dist/<to>.
 */
const PROGRAMS = [
  {
    name: 'task-runner',
    entry: 'task-runner/main.ts',
    // The runner finds its migrations beside its entry file (dist/migrations, /app/migrations).
    assets: [{ from: 'task-runner/migrations', to: 'migrations' }],
  },
  { name: 'operator', entry: 'operator/cli.ts' },
];

// Bundled CommonJS (pg, pino, commander…) calls require() for Node built-ins: give ESM one.
const REQUIRE_SHIM = "import { createRequire as __bgtaskCreateRequire } from 'node:module'; const require = __bgtaskCreateRequire(import.meta.url);";

async function buildProgram(program) {
  mkdirSync(DIST, { recursive: true });
  const stage = mkdtempSync(join(dirname(DIST), `.build-${program.name}-`));
  try {
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: { [program.name]: program.entry },
      outdir: stage,
      entryNames: '[name]',
      chunkNames: `chunks/${program.name}/[name]-[hash]`,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node24',
      // Smaller code parses faster, and start-up time is benchmarked.
      minify: true,
      // Class names stay readable in logs (pino's err.type) and stack traces.
      keepNames: true,
      sourcemap: 'linked',
      banner: { js: REQUIRE_SHIM },
      // pg-native is pg's optional native driver, never used here.
      external: ['pg-native'],
      metafile: true,
      logLevel: 'warning',
    });
    const built = Object.keys(result.metafile.outputs).map((file) => relative(stage, resolve(ROOT, file)));
    const chunkDir = join('chunks', program.name);
    const chunks = built.filter((file) => file.startsWith(chunkDir));
    const entries = built.filter((file) => !file.startsWith(chunkDir));
    mkdirSync(join(DIST, chunkDir), { recursive: true });
    for (const file of chunks) renameSync(join(stage, file), join(DIST, file));
    for (const asset of program.assets ?? []) publishFolder(join(ROOT, asset.from), join(DIST, asset.to), stage);
    for (const file of entries) renameSync(join(stage, file), join(DIST, file));
    dropUnusedChunks(join(DIST, chunkDir), new Set(chunks.map((file) => basename(file))));

    const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.mjs'));
    const entryBytes = outputs.find(([file]) => file.endsWith(`/${program.name}.mjs`))?.[1].bytes ?? 0;
    const totalBytes = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
    console.log(`${relative(process.cwd(), join(DIST, `${program.name}.mjs`))}  ${kb(entryBytes)} (+ ${outputs.length - 1} chunks, ${kb(totalBytes)} in all)`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Makes `to` a copy of the flat folder `from`, each file replaced by a rename (never half written). */
function publishFolder(from, to, stage) {
  mkdirSync(to, { recursive: true });
  const names = new Set(readdirSync(from));
  for (const name of names) {
    const staged = join(stage, `asset-${name}`);
    copyFileSync(join(from, name), staged);
    renameSync(staged, join(to, name));
  }
  for (const name of readdirSync(to)) if (!names.has(name)) rmSync(join(to, name), { force: true });
}

/** Deletes chunks this build does not reference once no build has written them for CHUNK_GRACE_MS. */
function dropUnusedChunks(dir, current) {
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    if (current.has(name)) continue;
    const file = join(dir, name);
    if (now - statSync(file).mtimeMs > CHUNK_GRACE_MS) rmSync(file, { force: true });
  }
}

const kb = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !PROGRAMS.some((p) => p.name === name));
if (unknown.length > 0) {
  console.error(`unknown program(s): ${unknown.join(', ')}; known: ${PROGRAMS.map((p) => p.name).join(', ')}`);
  process.exit(2);
}
await Promise.all(PROGRAMS.filter((p) => wanted.length === 0 || wanted.includes(p.name)).map(buildProgram));
