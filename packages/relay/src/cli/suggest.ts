/**
 * "Did you mean …?" for mistyped commands and flags.
 * @module
 */

/**
 * Edit distance between two short strings: insertions, deletions, substitutions and swaps of
 * two neighbours (`drian` → `drain` is 1), each costing 1.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  const at = (i: number, j: number) => d[i]?.[j] ?? Number.POSITIVE_INFINITY
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1)
      ;(d[i] as number[])[j] = best
    }
  }
  return at(a.length, b.length)
}

/**
 * The candidate closest to `input`, when it is close enough to be a typo: at most a third of its
 * length away (at least 1, at most 3 edits), or equal once dashes are ignored (`--batchsize` →
 * `--batch-size`).
 *
 * @example
 * suggest('drian', ['serve', 'drain', 'watch']) // 'drain'
 */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const bare = (s: string) => s.replace(/^-+/, '').replaceAll('-', '').toLowerCase()
  const exact = candidates.find((c) => bare(c) === bare(input))
  if (exact) return exact
  let best: { candidate: string; distance: number } | undefined
  for (const candidate of candidates) {
    const distance = editDistance(input.toLowerCase(), candidate.toLowerCase())
    if (!best || distance < best.distance) best = { candidate, distance }
  }
  const allowed = Math.min(3, Math.max(1, Math.floor(input.replace(/^-+/, '').length / 3)))
  return best && best.distance <= allowed ? best.candidate : undefined
}

/** `; did you mean x?` or nothing. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const s = suggest(input, candidates)
  return s ? `; did you mean ${s}?` : ''
}

/**
 * The message for a `node:util` parseArgs error: an unknown flag gets a suggestion among
 * `flags` (e.g. `unknown flag --batchsize; did you mean --batch-size?`), anything else keeps
 * parseArgs' own words.
 */
export function flagErrorMessage(error: unknown, flags: readonly string[]): string {
  const message = (error as Error).message
  const code = (error as { code?: string }).code
  const m = /'(-[^']+)'/.exec(message)
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && m?.[1]) {
    const flag = m[1].split('=')[0] as string
    return `unknown flag ${flag}${didYouMean(flag, flags)}`
  }
  return message
}
