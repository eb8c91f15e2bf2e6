/**
 * Configuration of the `outbox-relay` CLI: environment variables (and a few flags), validated
 * once with zod; every error names the variable or flag.
 * @module
 */
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { LOG_LEVELS } from '../core/log.js'
import {
  deadLetterPolicySchema,
  type EngineOptions,
  pgText,
  publishedRowsSchema,
  tableName,
} from '../core/options.js'
import type { AuthOptions } from '../http/auth.js'
import { ALL_COMMANDS } from './help.js'
import { type RetentionConfig, retentionConfig, retentionEnvSchema } from './retention-config.js'
import { didYouMean, flagErrorMessage } from './suggest.js'

/** The CLI's commands. */
export const COMMANDS = ['serve', 'drain', 'watch'] as const
export type Command = (typeof COMMANDS)[number]

/** Thrown for bad configuration; the CLI prints `message` and exits with code 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

const required = (what: string) => ({
  error: (issue: { input: unknown }) => (issue.input === undefined ? `is required (${what})` : undefined),
})

/** An integer from text, in `[min, max]`; each problem gets its own message. */
const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^[+-]?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(
      z.number().min(min, `must be between ${min} and ${max}`).max(max, `must be between ${min} and ${max}`),
    )

/**
 * A secret from the environment. Surrounding whitespace (the newline a mounted secret file ends
 * with) is trimmed; whitespace inside is refused, since no request could ever match it.
 */
const secret = (what: string) =>
  z
    .string()
    .transform((v) => v.trim())
    .pipe(
      z
        .string()
        .regex(/^\S*$/, `must not contain whitespace (${what}); check the secret's value`)
        .min(32, 'must be at least 32 characters (after trimming surrounding whitespace)'),
    )

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes')

function splitList(s: string): string[] {
  return s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
}

const commaList = z.string().transform(splitList)

/** Kafka clients the relay can publish with (`RELAY_KAFKA_CLIENT`). */
export const KAFKA_CLIENTS = ['kafkajs', 'platformatic', 'confluent'] as const
export type KafkaClientName = (typeof KAFKA_CLIENTS)[number]

/**
 * The environment variables, with defaults. Empty values count as unset (handy with
 * `docker run -e VAR=`). Unknown variables are ignored.
 */
export const envSchema = z.object({
  DATABASE_URL: z
    .string(required('the PostgreSQL URL, e.g. postgresql://user:password@host:5432/app'))
    .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL'),
  KAFKA_BROKERS: z
    .string(required('a comma-separated host:port list, e.g. kafka-1:9092,kafka-2:9092'))
    .transform(splitList)
    .pipe(
      z
        .array(z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^\s:,[\]]+):\d{1,5}$/, 'each broker must be host:port'))
        .min(1, 'must list at least one broker'),
    ),
  KAFKA_CLIENT_ID: z.string().min(1).default('outbox-relay'),
  /** The Kafka client the relay publishes with; the non-default ones are installed separately. */
  RELAY_KAFKA_CLIENT: z
    .enum(KAFKA_CLIENTS, { error: `must be one of ${KAFKA_CLIENTS.join(', ')}` })
    .default('kafkajs'),
  KAFKA_SSL: bool.default(false),
  KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().optional(),
  KAFKA_SASL_PASSWORD: z.string().optional(),
  /** Partitions of topics the relay creates (default: the broker's num.partitions). */
  KAFKA_TOPIC_PARTITIONS: int(1, 10_000).optional(),
  RELAY_TOKEN: secret('a bearer token is one word').optional(),
  RELAY_WEBHOOK_SECRET: secret('it is compared byte for byte').optional(),
  RELAY_AUTH: z.literal('none', { error: 'must be "none" (or unset)' }).optional(),
  PORT: int(0, 65_535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  OUTBOX_TABLE: tableName.default('outbox_event'),
  RELAY_ID: z.string().min(1).max(200).optional(),
  DRAIN_BATCH_SIZE: int(1, 10_000).default(500),
  DRAIN_MAX_BUDGET_MS: int(1, 3_600_000).default(25_000),
  DRAIN_MAX_ATTEMPTS: int(1, 1_000).default(10),
  DRAIN_LEASE_MS: int(100, 3_600_000).default(60_000),
  DEAD_LETTER_POLICY: deadLetterPolicySchema.default('block-key'),
  /** Mark published rows (kept until retention) or delete them at once. */
  RELAY_PUBLISHED_ROWS: z
    .enum(publishedRowsSchema.options, { error: 'must be mark or delete' })
    .default('mark'),
  /** Prepare the claim once per connection (default on); false behind PgBouncer before 1.21. */
  DB_PREPARED_STATEMENTS: bool.optional(),
  WATCH_POLL_MS: int(10, 86_400_000).default(5_000),
  WATCH_DEBOUNCE_MS: int(0, 60_000).default(20),
  /** Spans for batches and messages, to the OpenTelemetry SDK the process registered. */
  RELAY_TRACING: bool.default(false),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  LOG_FORMAT: z.enum(['json', 'text']).default('json'),
})
export type RelayEnv = z.output<typeof envSchema>

/** Everything the CLI needs, resolved. */
export interface RelayConfig {
  command: Command
  databaseUrl: string
  kafka: {
    /** `RELAY_KAFKA_CLIENT`: the client the publisher runs on (default kafkajs). */
    client?: KafkaClientName | undefined
    clientId: string
    brokers: string[]
    ssl: boolean
    sasl?:
      | { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string }
      | undefined
    numPartitions?: number | undefined
  }
  engine: EngineOptions
  /** From flags: what one drain may do. `budgetMs` defaults to `DRAIN_MAX_BUDGET_MS`. */
  drain: { maxEvents?: number | undefined; budgetMs: number; topics?: string[] | undefined }
  http: { port: number; host: string; auth: AuthOptions; maxBudgetMs: number }
  watch: { pollMs: number; debounceMs: number }
  /** `--quiet`: no progress output. */
  quiet: boolean
  /** `RELAY_TRACING`: trace batches and messages (needs `@opentelemetry/api` and a registered SDK). */
  tracing?: boolean | undefined
  /** `RELAY_RETENTION*`: what serve, watch and stream purge, and how often (none when absent). */
  retention?: RetentionConfig | undefined
  /** Logs on stderr: `LOG_LEVEL` (raised to `warn` by `--quiet`) and `LOG_FORMAT`. */
  log: { level: (typeof LOG_LEVELS)[number]; format: 'json' | 'text' }
}

/** Usage text of the CLI. */
export const USAGE = `usage: outbox-relay <command> [flags]

commands:
  serve   run the HTTP API (POST /drain, /health, /stats, /metrics, /dead, /dead/retry,
          /dead/discard, /purge, /openapi.json); purges old rows on an interval
  drain   drain once and exit: 0 = everything due was published, 1 = failures, dead rows or
          rows left (run again), 2 = bad configuration
  watch   LISTEN for new rows and drain at once (polling fallback), until SIGINT/SIGTERM;
          purges old rows on an interval
  stream  stream new rows from the WAL (logical replication) until SIGINT/SIGTERM
  stats   print the backlog as JSON
  dead    list, show, retry or discard dead rows
  purge   delete old published (and dead) rows now

\`outbox-relay <command> --help\` shows a command's flags; \`outbox-relay --version\` the version.

flags of serve, drain and watch:
  --max-events <n>   claim at most n rows per drain
  --budget-ms <ms>   stop draining before this much time (default DRAIN_MAX_BUDGET_MS)
  --topics <a,b>     only these topics
  --port <port>      serve: listen port (default PORT or 3000)
  --poll-ms <ms>     watch: polling fallback interval (default WATCH_POLL_MS or 5000)
  --quiet            no progress output, and no info logs (LOG_LEVEL at least warn)
  -h, --help         this text

environment: DATABASE_URL, KAFKA_BROKERS, KAFKA_CLIENT_ID, KAFKA_SSL, KAFKA_SASL_MECHANISM,
  KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_TOPIC_PARTITIONS, RELAY_TOKEN,
  RELAY_WEBHOOK_SECRET, RELAY_AUTH=none, PORT, HOST, OUTBOX_TABLE, RELAY_ID, DRAIN_BATCH_SIZE,
  DB_PREPARED_STATEMENTS, DRAIN_MAX_BUDGET_MS, DRAIN_MAX_ATTEMPTS, DRAIN_LEASE_MS, DEAD_LETTER_POLICY,
  RELAY_PUBLISHED_ROWS=mark|delete, WATCH_POLL_MS,
  WATCH_DEBOUNCE_MS, RELAY_TRACING, RELAY_RETENTION, RELAY_DEAD_RETENTION,
  RELAY_RETENTION_INTERVAL, RELAY_RETENTION_BATCH_SIZE, RELAY_KAFKA_CLIENT=kafkajs|platformatic|confluent,
  LOG_LEVEL (debug|info|warn|error|silent,
  default info), LOG_FORMAT (json|text, default json) (see the README)

logs go to stderr, one JSON object per line; stdout carries only results (drain's JSON)

exit codes: 0 done, 1 failed, 2 bad usage or configuration, 130/143 stopped by SIGINT/SIGTERM
`

function issuesText(error: z.ZodError): string {
  return error.issues
    .map((i) => `  ${i.path.length > 0 ? i.path.join('.') : '(environment)'}: ${i.message}`)
    .join('\n')
}

const FLAGS = {
  'max-events': { type: 'string' },
  'budget-ms': { type: 'string' },
  topics: { type: 'string' },
  port: { type: 'string' },
  'poll-ms': { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

function parseFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: FLAGS })
  } catch (error) {
    const known = Object.keys(FLAGS).map((f) => `--${f}`)
    throw new ConfigError(`${flagErrorMessage(error, known)} (see outbox-relay ${argv[0] ?? ''} --help)`)
  }
}

/** True when argv asks for help (no config is loaded then). */
export function wantsHelp(argv: string[]): boolean {
  return argv.length === 0 || argv.includes('--help') || argv.includes('-h') || argv[0] === 'help'
}

/** The command, first of the positionals; anything after it is refused. */
function parseCommand(positionals: string[]): Command {
  const [command, ...extra] = positionals
  if (!command || !(COMMANDS as readonly string[]).includes(command))
    throw new ConfigError(
      command
        ? `unknown command "${command}"${didYouMean(command, ALL_COMMANDS)} (see outbox-relay --help)`
        : `missing command\n\n${USAGE}`,
    )
  if (extra.length > 0) throw new ConfigError(`unexpected argument "${extra[0]}"\n\n${USAGE}`)
  return command as Command
}

/** The flags with values, named as the user types them so that errors say `--budget-ms`. */
const flagValuesSchema = z.object({
  '--max-events': int(1, 10_000_000).optional(),
  '--budget-ms': int(1, 86_400_000).optional(),
  '--topics': commaList.pipe(z.array(pgText.max(249)).min(1, 'must list at least one topic')).optional(),
  '--port': int(0, 65_535).optional(),
  '--poll-ms': int(10, 86_400_000).optional(),
})
type FlagValues = z.output<typeof flagValuesSchema>
type ParsedFlags = ReturnType<typeof parseFlags>['values']

/** Problems between variables that are each valid alone, one line per problem. */
function crossCheck(command: Command, e: RelayEnv): string[] {
  const problems: string[] = []
  if (command === 'serve' && !e.RELAY_TOKEN && !e.RELAY_WEBHOOK_SECRET && !e.RELAY_AUTH)
    problems.push(
      '  RELAY_TOKEN: is required for serve (or RELAY_WEBHOOK_SECRET, or RELAY_AUTH=none to disable auth)',
    )
  if (e.KAFKA_SASL_MECHANISM && (!e.KAFKA_SASL_USERNAME || !e.KAFKA_SASL_PASSWORD))
    problems.push(
      `  ${e.KAFKA_SASL_USERNAME ? 'KAFKA_SASL_PASSWORD' : 'KAFKA_SASL_USERNAME'}: is required with KAFKA_SASL_MECHANISM`,
    )
  if (e.RELAY_AUTH === 'none' && (e.RELAY_TOKEN || e.RELAY_WEBHOOK_SECRET))
    problems.push('  RELAY_AUTH: "none" contradicts RELAY_TOKEN/RELAY_WEBHOOK_SECRET: unset one of them')
  return problems
}

interface ValidInput {
  env: RelayEnv
  flags: FlagValues
  retention: z.output<typeof retentionEnvSchema>
}

/** Parses the environment (empty values count as unset) and the flags; throws naming every problem. */
function validate(command: Command, env: Record<string, string | undefined>, flags: ParsedFlags): ValidInput {
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''))
  const parsed = envSchema.safeParse(input)
  const problems: string[] = []
  if (!parsed.success) problems.push(issuesText(parsed.error))
  const f = flagValuesSchema.safeParse({
    '--max-events': flags['max-events'],
    '--budget-ms': flags['budget-ms'],
    '--topics': flags.topics,
    '--port': flags.port,
    '--poll-ms': flags['poll-ms'],
  })
  if (!f.success) problems.push(issuesText(f.error))
  const retention = retentionEnvSchema.safeParse(input)
  if (!retention.success) problems.push(issuesText(retention.error))
  if (parsed.success) problems.push(...crossCheck(command, parsed.data))
  if (problems.length > 0 || !parsed.success || !f.success || !retention.success)
    throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`)
  return { env: parsed.data, flags: f.data, retention: retention.data }
}

function kafkaConfig(e: RelayEnv): RelayConfig['kafka'] {
  return {
    client: e.RELAY_KAFKA_CLIENT,
    clientId: e.KAFKA_CLIENT_ID,
    brokers: e.KAFKA_BROKERS as string[],
    ssl: e.KAFKA_SSL,
    sasl: e.KAFKA_SASL_MECHANISM
      ? {
          mechanism: e.KAFKA_SASL_MECHANISM,
          username: e.KAFKA_SASL_USERNAME ?? '',
          password: e.KAFKA_SASL_PASSWORD ?? '',
        }
      : undefined,
    numPartitions: e.KAFKA_TOPIC_PARTITIONS,
  }
}

/**
 * Validates the environment and the flags of one CLI invocation.
 *
 * @param argv - arguments after the program name, e.g. `['drain', '--max-events', '1000']`
 * @param [env=process.env]
 * @throws ConfigError naming every bad variable or flag (the CLI exits with code 2)
 * @example
 * const config = loadConfig(['serve'], { DATABASE_URL: 'postgresql://localhost/app', KAFKA_BROKERS: 'localhost:9092', RELAY_TOKEN: '…32+ chars…' })
 */
export function loadConfig(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): RelayConfig {
  const { values: flags, positionals } = parseFlags(argv)
  const command = parseCommand(positionals)
  const { env: e, flags: fl, retention } = validate(command, env, flags)
  const quiet = flags.quiet === true
  const auth: AuthOptions =
    e.RELAY_AUTH === 'none' ? 'none' : { token: e.RELAY_TOKEN, webhookSecret: e.RELAY_WEBHOOK_SECRET }
  return {
    command,
    databaseUrl: e.DATABASE_URL,
    kafka: kafkaConfig(e),
    engine: {
      ...(e.RELAY_ID ? { relayId: e.RELAY_ID } : {}),
      table: e.OUTBOX_TABLE,
      batchSize: e.DRAIN_BATCH_SIZE,
      maxAttempts: e.DRAIN_MAX_ATTEMPTS,
      leaseMs: e.DRAIN_LEASE_MS,
      deadLetterPolicy: e.DEAD_LETTER_POLICY,
      publishedRows: e.RELAY_PUBLISHED_ROWS,
      ...(e.DB_PREPARED_STATEMENTS === undefined ? {} : { preparedStatements: e.DB_PREPARED_STATEMENTS }),
    },
    drain: {
      maxEvents: fl['--max-events'],
      budgetMs: fl['--budget-ms'] ?? e.DRAIN_MAX_BUDGET_MS,
      topics: fl['--topics'],
    },
    http: { port: fl['--port'] ?? e.PORT, host: e.HOST, auth, maxBudgetMs: e.DRAIN_MAX_BUDGET_MS },
    watch: { pollMs: fl['--poll-ms'] ?? e.WATCH_POLL_MS, debounceMs: e.WATCH_DEBOUNCE_MS },
    quiet,
    tracing: e.RELAY_TRACING,
    retention: retentionConfig(retention),
    log: {
      level: quiet && LOG_LEVELS.indexOf(e.LOG_LEVEL) < LOG_LEVELS.indexOf('warn') ? 'warn' : e.LOG_LEVEL,
      format: e.LOG_FORMAT,
    },
  }
}
