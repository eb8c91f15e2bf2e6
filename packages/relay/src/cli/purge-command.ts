/**
 * `outbox-relay purge`: retention on demand (cron, or before a migration).
 * @module
 */
import { z } from 'zod'
import { purgeOutbox } from '../core/retention.js'
import { checkFlags, parseCommandFlags, runAdmin } from './admin.js'
import { ConfigError } from './config.js'
import { duration } from './duration.js'
import type { CliIO } from './main.js'

const FLAGS = {
  'older-than': { type: 'string' },
  'dead-older-than': { type: 'string' },
  'dry-run': { type: 'boolean' },
} as const

const flagsSchema = z.object({
  '--older-than': duration().optional(),
  '--dead-older-than': duration().optional(),
})

function plan(argv: string[]) {
  const { values, positionals } = parseCommandFlags('purge', argv, FLAGS)
  if (positionals.length > 0) throw new ConfigError(`purge: unexpected argument "${positionals[0]}"`)
  const f = checkFlags(flagsSchema, {
    '--older-than': values['older-than'],
    '--dead-older-than': values['dead-older-than'],
  })
  return {
    olderThanMs: f['--older-than'],
    deadOlderThanMs: f['--dead-older-than'],
    dryRun: values['dry-run'] === true,
  }
}

/** Runs `outbox-relay purge`; returns the exit code. */
export function purgeMain(argv: string[], io: CliIO): Promise<number> {
  return runAdmin(
    'purge',
    argv,
    io,
    () => plan(argv),
    async ({ pool, table, retention, print, io: out }, p) => {
      const policy = {
        ...retention.policy,
        ...(p.olderThanMs !== undefined ? { publishedMaxAgeMs: p.olderThanMs } : {}),
        ...(p.deadOlderThanMs !== undefined ? { deadMaxAgeMs: p.deadOlderThanMs } : {}),
      }
      const result = await purgeOutbox(pool, { table, policy, dryRun: p.dryRun, signal: out.signal })
      print(result)
      if (result.busy)
        out.stderr.write('outbox-relay purge: another relay is purging; it will finish the work\n')
      return 0
    },
  )
}
