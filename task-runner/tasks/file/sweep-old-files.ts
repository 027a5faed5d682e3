/**
 * Removes the files under a directory whose modification time is before a cutoff. The tree is
 * read with opendir (streamed, never whole directories in memory) and symlinks are never
 * followed: a directory entry's type comes from readdir, so a symlink to a directory is not
 * entered, and a file is judged by lstat and removed with unlink, which act on the link
 * itself. File operations run with bounded concurrency; directories are walked depth-first, so
 * the open directory handles stay as few as the tree is deep.
 */
import { lstat, opendir, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface SweepOptions {
  cutoffMs: number;
  dryRun: boolean;
  concurrency: number;
  /** Remove subdirectories left empty (never the root itself). */
  removeEmptyDirs: boolean;
  /** Only files whose name matches are candidates (default: all). */
  match?: (name: string) => boolean;
  signal: AbortSignal;
  /** Called for each file removed (or, in a dry run, that would be). */
  onFile?: (path: string, bytes: number) => void;
  /** Called for each directory removed. */
  onDir?: (path: string) => void;
  /** Called for each file that could not be judged or removed; the sweep goes on. */
  onError: (path: string, err: unknown) => void;
}

export interface SweepTotals {
  files: number;
  bytes: number;
  dirs: number;
  errors: number;
}

/** A counting semaphore: at most `n` holders at once, waiting callers served in order. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async take(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  give(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

const gone = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * An abort rejects with the signal's reason once the operations in flight have finished: the
 * totals are then never returned, so a caller that reports what was removed counts it through
 * onFile, onDir and onError as the sweep goes.
 */
export async function sweepOldFiles(root: string, options: SweepOptions): Promise<SweepTotals> {
  const totals: SweepTotals = { files: 0, bytes: 0, dirs: 0, errors: 0 };
  const slots = new Slots(options.concurrency);
  const fail = (path: string, err: unknown) => {
    totals.errors++;
    options.onError(path, err);
  };

  /** Resolves true when the file is gone (removed now or already), false when it stays. */
  const considerFile = async (path: string): Promise<boolean> => {
    try {
      const stat = await lstat(path);
      if (stat.isDirectory() || stat.mtimeMs >= options.cutoffMs) return false;
      if (!options.dryRun) await unlink(path);
      totals.files++;
      totals.bytes += stat.size;
      options.onFile?.(path, stat.size);
      return true;
    } catch (err) {
      if (gone(err)) return true;
      fail(path, err);
      return false;
    }
  };

  /** Resolves true when the directory ends up empty. */
  const sweepDir = async (dir: string, isRoot: boolean): Promise<boolean> => {
    options.signal.throwIfAborted();
    let oldEnough = false;
    if (options.removeEmptyDirs && !isRoot) {
      try {
        // Judged by its mtime before the sweep: removing files below updates it.
        oldEnough = (await lstat(dir)).mtimeMs < options.cutoffMs;
      } catch (err) {
        if (gone(err)) return true;
        fail(dir, err);
        return false;
      }
    }
    let remaining = 0;
    const inFlight = new Set<Promise<void>>();
    let handle;
    try {
      handle = await opendir(dir, { bufferSize: 256 });
    } catch (err) {
      if (gone(err)) return true;
      fail(dir, err);
      return false;
    }
    try {
      for await (const entry of handle) {
        options.signal.throwIfAborted(); // a flat directory of a million files is one long loop
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (!(await sweepDir(path, false))) remaining++;
          continue;
        }
        if (options.match && !options.match(entry.name)) {
          remaining++;
          continue;
        }
        await slots.take();
        const op: Promise<void> = considerFile(path)
          .then((removed) => {
            if (!removed) remaining++;
          })
          .finally(() => {
            slots.give();
            inFlight.delete(op);
          });
        inFlight.add(op);
      }
    } catch (err) {
      // An abort (throwIfAborted above) passes through; a failed read of the directory is recorded.
      if (options.signal.aborted) throw err;
      fail(dir, err);
      remaining++;
    } finally {
      await Promise.all(inFlight);
    }
    // A dry run removes nothing, so no directory ends up empty.
    if (isRoot || !options.removeEmptyDirs || options.dryRun || remaining > 0 || !oldEnough) return remaining === 0 && !options.dryRun;
    try {
      await rmdir(dir);
      totals.dirs++;
      options.onDir?.(dir);
      return true;
    } catch (err) {
      // Something was created in it meanwhile: it stays.
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      if (gone(err)) return true;
      fail(dir, err);
      return false;
    }
  };

  await sweepDir(root, true);
  return totals;
}
