/** "1 file", "3 files", "1 daily summary", "2 daily summaries": run messages that read as sentences. */
export function countNoun(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
