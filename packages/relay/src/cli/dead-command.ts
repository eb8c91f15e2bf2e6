/**
 * `outbox-relay dead list|show|retry|discard`: the dead-letter endpoints of the HTTP API, from
 * the command line, against the database alone.
 * @module
 */
import { z } from 'zod'
import {
  actOnDead,
  DEFAULT_DEAD_PAGE_BYTES,
  type DeadSelection,
  deadLetter,
  deadLetterPage,
} from '../core/dead-letters.js'
import { pgText } from '../core/options.js'
import { checkFlags, intFlag, parseCommandFlags, runAdmin } from './admin.js'
import { ConfigError } from './config.js'
import type { CliIO } from './main.js'
import { didYouMean } from './suggest.js'

const ACTIONS = ['list', 'show', 'retry', 'discard'] as const
type Action = (typeof ACTIONS)[number]

const FLAGS = {
  topic: { type: 'string' },
  all: { type: 'boolean' },
  yes: { type: 'boolean' },
  limit: { type: 'string' },
  'max-bytes': { type: 'string' },
  cursor: { type: 'string' },
  payload: { type: 'boolean' },
} as const

const uuid = z.uuid({ error: 'must be a UUID (the id of a dead row)' })

const listSchema = z.object({
  '--limit': intFlag(1, 500).default(50),
  '--max-bytes': intFlag(1_024, 16 * 1024 * 1024).default(DEFAULT_DEAD_PAGE_BYTES),
  '--cursor': z
    .string()
    .regex(/^\d{1,19}$/, 'must be the nextCursor of a previous page')
    .optional(),
  '--topic': pgText.min(1).max(249).optional(),
})

type Plan =
  | {
      action: 'list'
      limit: number
      maxBytes: number
      cursor?: string | undefined
      topic?: string | undefined
      payload: boolean
    }
  | { action: 'show'; id: string }
  | { action: 'retry' | 'discard'; selection: DeadSelection }

/** Which rows `retry`/`discard` touch: ids, or `--topic`/`--all` confirmed by `--yes`. */
function selectionOf(
  action: 'retry' | 'discard',
  ids: string[],
  flags: { topic?: string | undefined; all?: boolean | undefined; yes?: boolean | undefined },
): DeadSelection {
  const given = [ids.length > 0, flags.topic !== undefined, flags.all === true].filter(Boolean).length
  if (given !== 1)
    throw new ConfigError(`${action}: give ids, or --topic <t>, or --all (exactly one of them)`)
  if (ids.length > 0) return { ids: ids.map((id) => checkFlags(uuid, id)) }
  const what = flags.all ? 'every dead row' : `every dead row of topic "${flags.topic}"`
  if (!flags.yes) throw new ConfigError(`${action} would touch ${what}: add --yes to confirm`)
  return flags.all ? { all: true } : { topics: [checkFlags(pgText.min(1).max(249), flags.topic)] }
}

function plan(argv: string[]): Plan {
  const { values, positionals } = parseCommandFlags('dead', argv, FLAGS)
  const [action, ...rest] = positionals
  if (!action || !(ACTIONS as readonly string[]).includes(action))
    throw new ConfigError(
      action
        ? `unknown action "${action}"${didYouMean(action, ACTIONS)} (list, show, retry or discard)`
        : 'missing action: list, show, retry or discard (see outbox-relay dead --help)',
    )
  const a = action as Action
  if (a === 'list') {
    if (rest.length > 0) throw new ConfigError(`list: unexpected argument "${rest[0]}"`)
    const f = checkFlags(listSchema, {
      '--limit': values.limit,
      '--max-bytes': values['max-bytes'],
      '--cursor': values.cursor,
      '--topic': values.topic,
    })
    return {
      action: a,
      limit: f['--limit'],
      maxBytes: f['--max-bytes'],
      cursor: f['--cursor'],
      topic: f['--topic'],
      payload: values.payload === true,
    }
  }
  if (a === 'show') {
    if (rest.length !== 1) throw new ConfigError('show: give exactly one id')
    return { action: a, id: checkFlags(uuid, rest[0]) }
  }
  return { action: a, selection: selectionOf(a, rest, values) }
}

/** Runs `outbox-relay dead …`; returns the exit code. */
export function deadMain(argv: string[], io: CliIO): Promise<number> {
  return runAdmin(
    'dead',
    argv,
    io,
    () => plan(argv),
    async ({ pool, table, print }, p) => {
      if (p.action === 'list') {
        const { topic, ...page } = p
        print(
          await deadLetterPage(pool, {
            table,
            ...page,
            withPayload: p.payload,
            topics: topic ? [topic] : undefined,
          }),
        )
        return 0
      }
      if (p.action === 'show') {
        const event = await deadLetter(pool, { table, id: p.id })
        if (!event) {
          io.stderr.write(`outbox-relay dead show: no dead row with id ${p.id}\n`)
          return 1
        }
        print(event)
        return 0
      }
      const n = await actOnDead(pool, {
        table,
        action: p.action,
        selection: p.selection,
        lockTimeoutMs: 10_000,
      })
      print(p.action === 'retry' ? { retried: n } : { discarded: n })
      return 0
    },
  )
}
