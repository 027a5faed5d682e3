// The one message for a task name the registry does not know, from the runner (exit 2) and the
// operator (InvalidSpec): the known names, and the nearest one when the name looks like a typo of it.
import { nearestName } from './nearest-name.ts';

export function unknownTaskMessage(name: string, known: readonly string[]): string {
  const nearest = nearestName(name, known);
  return `unknown task ${JSON.stringify(name)}${nearest ? ` (did you mean ${nearest}?)` : ''}; known tasks: ${known.join(', ')}`;
}
