/**
 * Which directories a file task may touch: each must be, after resolving symlinks, one of the
 * allowed roots (BGTASK_FILE_ROOTS) or inside one. Anything else is input no retry can fix.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { InvalidInputError } from '../errors.ts';

export function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

async function realpathOr(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot resolve ${path}`, { cause: err });
  }
}

export interface CheckedRoot {
  /** As configured. */
  given: string;
  /** Symlinks resolved; undefined when the directory does not exist. */
  real: string | undefined;
}

/**
 * Resolves every root and checks it against the allow-list. A root that does not exist is
 * returned with `real` undefined (nothing to do there), but only if its path is allowed.
 */
export async function checkRoots(roots: readonly string[], allowed: readonly string[], what: string): Promise<CheckedRoot[]> {
  if (allowed.length === 0) throw new InvalidInputError(`invalid configuration: BGTASK_FILE_ROOTS is not set, so no ${what} is allowed`);
  const allowedReal = await Promise.all(allowed.map(async (a) => (await realpathOr(a)) ?? resolve(a)));
  const checked: CheckedRoot[] = [];
  for (const given of roots) {
    if (!isAbsolute(given)) throw new InvalidInputError(`${what} ${given} is not an absolute path`);
    const real = await realpathOr(given);
    const subject = real ?? resolve(given);
    if (!allowedReal.some((a) => isInside(subject, a))) {
      throw new InvalidInputError(`${what} ${given}${real && real !== given ? ` (${real})` : ''} is outside the allowed roots (BGTASK_FILE_ROOTS: ${allowed.join(':')})`);
    }
    checked.push({ given, real });
  }
  return checked;
}
