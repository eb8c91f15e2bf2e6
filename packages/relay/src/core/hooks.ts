/**
 * Composing engine hooks.
 * @module
 */
import type { EngineHooks } from './engine.js'

/**
 * Merges hook sets into one: each `onBatch`/`onDrain` called in order, each `wrapBatch` nested
 * (the first set's outermost).
 * @example
 * createEngine({ pool, publisher, hooks: combineHooks(tracingHooks(), metrics.hooks) })
 */
export function combineHooks(...sets: Array<EngineHooks | undefined>): EngineHooks {
  const list = sets.filter((s): s is EngineHooks => s !== undefined)
  const wrappers = list.flatMap((h) => (h.wrapBatch ? [h.wrapBatch.bind(h)] : []))
  return {
    ...(wrappers.length > 0
      ? {
          wrapBatch: <T>(run: () => Promise<T>) =>
            wrappers.reduceRight<() => Promise<T>>((inner, wrap) => () => wrap(inner), run)(),
        }
      : {}),
    onBatch: (info) => {
      for (const h of list) h.onBatch?.(info)
    },
    onDrain: (result) => {
      for (const h of list) h.onDrain?.(result)
    },
  }
}
