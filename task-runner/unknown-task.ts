// The one message for a task name the registry does not know, from the runner (exit 2) and the
// operator (InvalidSpec): the known names, and the nearest one when the name looks like a typo of it.
import { closest, distance } from 'fastest-levenshtein';

/** Edits (insertions, deletions, substitutions) a name may be off by and still be taken for a typo. */
const TYPO_EDITS = 3;

export function unknownTaskMessage(name: string, known: readonly string[]): string {
  const nearest = known.length > 0 ? closest(name, [...known]) : undefined;
  const hint = nearest !== undefined && distance(name, nearest) <= TYPO_EDITS ? ` (did you mean ${nearest}?)` : '';
  return `unknown task ${JSON.stringify(name)}${hint}; known tasks: ${known.join(', ')}`;
}
