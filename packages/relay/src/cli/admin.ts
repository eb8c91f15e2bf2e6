/**
 * What the database-only commands (`stats`, `dead`, `purge`) share: flags with suggestions,
 * `DATABASE_URL` and `OUTBOX_TABLE` (no Kafka), a small pool, JSON output and exit codes.
 * @module
 */
import { parseArgs } from 'node:util'
import type pg from 'pg'
import { z } from 'zod'
import { coerceError, isRelayError } from '../core/errors.js'
import { ConfigError, envSchema } from './config.js'
import { COMMAND_HELP } from './help.js'
import type { CliIO } from './main.js'
import { createRelayPool } from './pool.js'
import { type RetentionConfig, retentionConfig, retentionEnvSchema } from './retention-config.js'
import { flagErrorMessage } from './suggest.js'

/** Flags as `node:util` parseArgs takes them. */
export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>

/** Parsed flags: strings for string flags, booleans for boolean flags; positionals apart. */
export interface ParsedFlags<F extends FlagSpec> {
  values: { [K in keyof F]?: F[K]['type'] extends 'string' ? string : boolean }
  positionals: string[]
}

/** What a database-only command works with. */
export interface AdminContext {
  pool: pg.Pool
  table: string
  retention: RetentionConfig
  io: CliIO
  /** Writes `value` as indented JSON on stdout. */
  print(value: unknown): void
}

const adminEnvSchema = envSchema
  .pick({ DATABASE_URL: true, OUTBOX_TABLE: true })
  .extend(retentionEnvSchema.shape)

/** Parses the flags of `command`; an unknown flag gets a suggestion. @throws ConfigError */
export function parseCommandFlags<F extends FlagSpec>(
  command: keyof typeof COMMAND_HELP,
  argv: string[],
  flags: F,
): ParsedFlags<F> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { ...flags, help: { type: 'boolean', short: 'h' } },
    })
    return { values: values as ParsedFlags<F>['values'], positionals }
  } catch (error) {
    const known = [...Object.keys(flags), 'help'].map((f) => `--${f}`)
    throw new ConfigError(`${flagErrorMessage(error, known)} (see outbox-relay ${command} --help)`)
  }
}

/**
 * Validates the flags' values with `schema` (keys named as the flags, e.g. `'--limit'`).
 * @throws ConfigError naming each bad flag
 */
export function checkFlags<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  throw new ConfigError(
    `invalid flags:\n${result.error.issues.map((i) => `  ${i.path.join('.') || '(flags)'}: ${i.message}`).join('\n')}`,
  )
}

function loadAdminEnv(env: Record<string, string | undefined>) {
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''))
  const parsed = adminEnvSchema.safeParse(input)
  if (parsed.success) return parsed.data
  throw new ConfigError(
    `invalid configuration:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`,
  )
}

/**
 * Runs a database-only command: `--help` prints its text (exit 0); `prepare` checks the
 * arguments before anything connects (ConfigError → exit 2); then `act` runs with a pool of two
 * connections (a failure → exit 1, the message on stderr). Returns the exit code.
 */
export async function runAdmin<P>(
  command: keyof typeof COMMAND_HELP,
  argv: string[],
  io: CliIO,
  prepare: () => P,
  act: (ctx: AdminContext, prepared: P) => Promise<number>,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(COMMAND_HELP[command])
    return 0
  }
  let prepared: P
  let env: ReturnType<typeof loadAdminEnv>
  try {
    prepared = prepare()
    env = loadAdminEnv(io.env)
  } catch (error) {
    io.stderr.write(
      `outbox-relay ${command}: ${error instanceof ConfigError ? error.message : coerceError(error)}\n`,
    )
    return 2
  }
  const pool = createRelayPool(env.DATABASE_URL, {
    applicationName: `outbox-relay ${command}`,
    max: 2,
    onError: (error) =>
      io.stderr.write(`outbox-relay ${command}: database connection lost: ${error.message}\n`),
  })
  const print = (value: unknown) => io.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
  try {
    return await act({ pool, table: env.OUTBOX_TABLE, retention: retentionConfig(env), io, print }, prepared)
  } catch (error) {
    const code = isRelayError(error, 'RELAY_INVALID_OPTIONS') ? 2 : 1
    io.stderr.write(`outbox-relay ${command} failed: ${coerceError(error, 1000)}\n`)
    return code
  } finally {
    await pool.end().catch(() => {})
  }
}

/** A page size, a byte budget or a batch count from a flag. */
export const intFlag = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(
      z.number().min(min, `must be between ${min} and ${max}`).max(max, `must be between ${min} and ${max}`),
    )
