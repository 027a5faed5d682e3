import * as z from 'zod';
import { InvalidInputError, describeError } from '../../errors.ts';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';

const MAX_ERRORS_LOGGED = 20;

export default defineTask({
  name: 'file.cleanup-temp-files',
  family: 'file',
  description: 'Removes temporary files older than maxAgeHours under the configured roots, never following symlinks out of them',
  params: z.strictObject({
    roots: z.array(z.string().startsWith('/', 'must be an absolute path')).min(1).optional().describe('directories to clean (else BGTASK_TEMP_ROOTS); each inside BGTASK_FILE_ROOTS'),
    maxAgeHours: z.number().positive().max(24 * 3650).default(24).describe('files last modified longer ago than this are removed'),
    removeEmptyDirs: z.boolean().default(false).describe('also remove subdirectories left empty (older than maxAgeHours themselves)'),
    concurrency: z.int().min(1).max(256).default(32).describe('file operations in flight at once'),
    listLimit: z.int().min(0).max(100_000).default(1000).describe('in a dry run, files listed in the log at most (all are counted)'),
  }),
  defaults: {
    schedule: '0 2 * * *',
    retry: { maxRetries: 3, delaySeconds: 600, backoff: 'Fixed' },
    timeoutSeconds: 3600,
    softTimeoutSeconds: 3300,
  },
  needs: {},
  async run(ctx) {
    const p = ctx.params;
    const [{ checkRoots }, { sweepOldFiles }] = await Promise.all([import('../../services/file-roots.ts'), import('./sweep-old-files.ts')]);
    const roots = p.roots ?? ctx.env.BGTASK_TEMP_ROOTS;
    if (!roots || roots.length === 0) throw new InvalidInputError('no roots to clean: give the roots param or set BGTASK_TEMP_ROOTS');
    const checked = await checkRoots(roots, ctx.env.BGTASK_FILE_ROOTS, 'temp root');

    const cutoffMs = ctx.clock.now().getTime() - p.maxAgeHours * 3600_000;
    // Counted into the summary file by file, not from a sweep's totals: a stop or the soft timeout
    // ends a sweep by throwing, and the run must still report what it removed until then.
    const filesKey = ctx.dryRun ? 'files_to_remove' : 'files_removed';
    const bytesKey = ctx.dryRun ? 'bytes_to_free' : 'bytes_freed';
    ctx.count(filesKey, 0);
    ctx.count(bytesKey, 0);
    if (p.removeEmptyDirs && !ctx.dryRun) ctx.count('dirs_removed', 0);
    ctx.set('roots', checked.length);
    let listed = 0;
    let errorsLogged = 0;
    let firstError: string | undefined;
    const totals = { files: 0, bytes: 0, dirs: 0, errors: 0 };
    for (const root of checked) {
      if (root.real === undefined) {
        ctx.log.warn({ root: root.given }, 'temp root does not exist; nothing to clean there');
        ctx.count('roots_missing');
        continue;
      }
      const started = performance.now();
      const result = await sweepOldFiles(root.real, {
        cutoffMs,
        dryRun: ctx.dryRun,
        concurrency: p.concurrency,
        removeEmptyDirs: p.removeEmptyDirs,
        signal: ctx.signal,
        onFile: (path, bytes) => {
          ctx.count(filesKey);
          ctx.count(bytesKey, bytes);
          if (ctx.dryRun && listed++ < p.listLimit) ctx.log.info({ path, bytes }, 'would remove');
        },
        onDir: () => ctx.count('dirs_removed'),
        onError: (path, err) => {
          ctx.count('errors');
          firstError ??= `${path}: ${describeError(err)}`;
          if (errorsLogged++ < MAX_ERRORS_LOGGED) ctx.log.warn({ path, err }, 'could not clean up');
        },
      });
      for (const key of ['files', 'bytes', 'dirs', 'errors'] as const) totals[key] += result[key];
      ctx.log.info({ root: root.real, ...result, ms: Math.round(performance.now() - started) }, ctx.dryRun ? 'root scanned' : 'root cleaned');
    }
    if (totals.errors > 0) {
      throw new Error(`${totals.errors} files or directories could not be cleaned up (removed ${totals.files}); first: ${firstError}`);
    }
    return ctx.dryRun
      ? `dry run: ${countNoun(totals.files, 'file')} (${countNoun(totals.bytes, 'byte')}) would be removed`
      : `removed ${countNoun(totals.files, 'file')} (${countNoun(totals.bytes, 'byte')}) older than ${p.maxAgeHours} h`;
  },
});
