/**
 * `outbox-relay stats`: the backlog as JSON, from the database alone.
 * @module
 */
import { createEngine } from '../core/engine.js'
import type { Publisher } from '../core/publisher.js'
import { parseCommandFlags, runAdmin } from './admin.js'
import type { CliIO } from './main.js'

/** The engine here only reads statistics: it never publishes. */
const NO_PUBLISHER: Publisher = {
  connect: async () => {},
  disconnect: async () => {},
  publish: async () => {
    throw new Error('outbox-relay stats never publishes')
  },
}

/** Runs `outbox-relay stats`; returns the exit code. */
export function statsMain(argv: string[], io: CliIO): Promise<number> {
  return runAdmin(
    'stats',
    argv,
    io,
    () => {
      const { positionals } = parseCommandFlags('stats', argv, {})
      if (positionals.length > 0) throw new Error(`unexpected argument "${positionals[0]}"`)
    },
    async ({ pool, table, print }) => {
      const engine = createEngine({ pool, publisher: NO_PUBLISHER, options: { table } })
      print(await engine.stats())
      return 0
    },
  )
}
