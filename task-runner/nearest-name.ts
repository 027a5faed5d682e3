// "Did you mean …?" for names a user typed: the nearest known name, when it is close enough to
// take the typed one for a typo of it.
import { closest, distance } from 'fastest-levenshtein';

/** Edits (insertions, deletions, substitutions) a name may be off by and still be taken for a typo. */
const TYPO_EDITS = 3;

export function nearestName(name: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const nearest = closest(name, [...known]);
  return distance(name, nearest) <= TYPO_EDITS ? nearest : undefined;
}
