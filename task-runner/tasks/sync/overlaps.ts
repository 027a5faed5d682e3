/**
 * The number of overlapping pairs among time intervals: a sweep over the intervals by start,
 * keeping the ends of those still open in a min-heap. O(n log n + pairs).
 */
export interface Interval {
  start: number;
  end: number;
}

export function countOverlappingPairs(intervals: readonly Interval[]): number {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  const ends: number[] = []; // a binary min-heap
  let pairs = 0;
  for (const { start, end } of sorted) {
    // Back-to-back meetings (one ends when the next starts) do not conflict.
    while (ends.length > 0 && ends[0]! <= start) popMin(ends);
    pairs += ends.length;
    push(ends, end);
  }
  return pairs;
}

function push(heap: number[], value: number): void {
  heap.push(value);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]! <= heap[i]!) break;
    [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
    i = parent;
  }
}

function popMin(heap: number[]): void {
  const last = heap.pop()!;
  if (heap.length === 0) return;
  heap[0] = last;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let smallest = i;
    if (l < heap.length && heap[l]! < heap[smallest]!) smallest = l;
    if (r < heap.length && heap[r]! < heap[smallest]!) smallest = r;
    if (smallest === i) return;
    [heap[smallest], heap[i]] = [heap[i]!, heap[smallest]!];
    i = smallest;
  }
}
