/**
 * Retry delays.
 * @module
 */

/**
 * Delay before retry number `attempt` (1 = first retry): exponential, capped, with full jitter
 * above a floor: uniform in `[baseMs, min(maxMs, baseMs * 2^(attempt-1))]`. The jitter spreads
 * relays and rows apart after a broker outage; the floor keeps a retry from being due again at
 * once (which would burn attempts within one drain).
 *
 * @param attempt - attempts so far, including the one that just failed (>= 1)
 * @param options.baseMs - first delay
 * @param options.maxMs - cap
 * @param [random=Math.random] - source of jitter in [0, 1)
 * @example
 * backoffDelay(3, { baseMs: 1000, maxMs: 300_000 }) // between 1000 and 4000
 */
export function backoffDelay(
  attempt: number,
  options: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30)
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** exponent)
  const floor = Math.min(options.baseMs, cap)
  return Math.round(floor + random() * (cap - floor))
}
