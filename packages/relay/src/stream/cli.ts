/**
 * `outbox-relay stream`: the stream relay as a command, configured from the environment like the
 * other commands, plus `--drop-slot` for uninstalling.
 * @module
 */
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { ConfigError, loadConfig, type RelayConfig } from '../cli/config.js'
import type { ProgressStream } from '../cli/progress.js'
import { startRetention } from '../cli/retention-config.js'
import { applicationName, cliLogger, createRuntime, type Runtime } from '../cli/runtime.js'
import { coerceError } from '../core/errors.js'
import { type Logger, log } from '../core/log.js'
import { type PublishedRows, publishedRowsSchema } from '../core/options.js'
import { serveStreamStats } from './metrics.js'
import { checkStreamName } from './sql.js'
import { createStreamer, DEFAULT_STREAM_SLOT, dropStreamSetup, type Streamer } from './streamer.js'

/** Usage text of `outbox-relay stream`. */
export const STREAM_USAGE = `usage: outbox-relay stream [--drop-slot]

Streams new outbox rows from the WAL (logical replication, pgoutput) to Kafka until SIGINT/SIGTERM.
Needs wal_level = logical and a role with REPLICATION (or superuser). Start several: one streams,
the others stand by and take over when it stops.

flags:
  --drop-slot   uninstall: drop the replication slot and the publication, then exit
                (stop every streamer first)
  -h, --help    this text

environment: DATABASE_URL, KAFKA_* and OUTBOX_TABLE, DRAIN_BATCH_SIZE, DEAD_LETTER_POLICY, RELAY_ID,
  RELAY_RETENTION* (old rows purged on an interval) as for the other commands, and
  STREAM_SLOT               replication slot (default outbox_relay)
  STREAM_PUBLICATION        publication (default: the slot's name)
  STREAM_BATCH_SIZE         events per publish and per mark (default DRAIN_BATCH_SIZE)
  STREAM_LAG_ALERT_BYTES    max slot lag: above it the health is degraded, logged and on
                            /metrics (default 1073741824 = 1 GiB)
  STREAM_HEALTH_CHECK_MS    how often the slot's health is checked for that log (default 10000)
  STREAM_STANDBY_RETRY_MS   how often a standby tries the slot (default 1000)
  STREAM_LINGER_MS          wait for more events before a small batch (default 0)
  STREAM_PUBLISHED_ROWS     mark (status published, kept until retention) or delete (rows are
                            deleted once Kafka acknowledged them) (default RELAY_PUBLISHED_ROWS,
                            else mark)
  STREAM_HTTP_PORT          serve GET /stats and GET /metrics on this port (default: no HTTP)
  STREAM_HTTP_HOST          their address (default 127.0.0.1)
`

const int = (min: number, max: number) =>
  z.coerce.number({ error: 'must be a number' }).int('must be an integer').min(min).max(max)

const name = (what: 'slot' | 'publication') =>
  z.string().superRefine((value, ctx) => {
    try {
      checkStreamName(what, value)
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message })
    }
  })

/** The stream command's own variables. */
export const streamEnvSchema = z.object({
  STREAM_SLOT: name('slot').default(DEFAULT_STREAM_SLOT),
  STREAM_PUBLICATION: name('publication').optional(),
  STREAM_BATCH_SIZE: int(1, 10_000).optional(),
  STREAM_LAG_ALERT_BYTES: int(1, Number.MAX_SAFE_INTEGER).default(1024 ** 3),
  STREAM_HEALTH_CHECK_MS: int(100, 3_600_000).default(10_000),
  STREAM_STANDBY_RETRY_MS: int(10, 600_000).default(1_000),
  STREAM_LINGER_MS: int(0, 10_000).default(0),
  STREAM_PUBLISHED_ROWS: z.enum(publishedRowsSchema.options, { error: 'must be mark or delete' }).optional(),
  STREAM_HTTP_PORT: int(0, 65_535).optional(),
  STREAM_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
})

export interface StreamConfig {
  relay: RelayConfig
  dropSlot: boolean
  slot: string
  publication: string
  batchSize: number
  lagAlertBytes: number
  healthCheckMs: number
  standbyRetryMs: number
  lingerMs: number
  publishedRows: PublishedRows
  http: { port: number; host: string } | undefined
}

/**
 * Reads the stream command's configuration; throws `ConfigError` naming each bad variable or flag.
 */
export function loadStreamConfig(argv: string[], env: Record<string, string | undefined>): StreamConfig {
  let flags: { 'drop-slot'?: boolean | undefined }
  try {
    flags = parseArgs({ args: argv, options: { 'drop-slot': { type: 'boolean' } }, strict: true }).values
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n\n${STREAM_USAGE}`)
  }
  const set = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const relay = loadConfig(['drain'], env)
  const parsed = streamEnvSchema.safeParse(set)
  if (!parsed.success)
    throw new ConfigError(
      `invalid configuration:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`,
    )
  const e = parsed.data
  return {
    relay,
    dropSlot: flags['drop-slot'] === true,
    slot: e.STREAM_SLOT,
    publication: e.STREAM_PUBLICATION ?? e.STREAM_SLOT,
    batchSize: e.STREAM_BATCH_SIZE ?? relay.engine?.batchSize ?? 500,
    lagAlertBytes: e.STREAM_LAG_ALERT_BYTES,
    healthCheckMs: e.STREAM_HEALTH_CHECK_MS,
    standbyRetryMs: e.STREAM_STANDBY_RETRY_MS,
    lingerMs: e.STREAM_LINGER_MS,
    publishedRows: e.STREAM_PUBLISHED_ROWS ?? relay.engine?.publishedRows ?? 'mark',
    http:
      e.STREAM_HTTP_PORT === undefined ? undefined : { port: e.STREAM_HTTP_PORT, host: e.STREAM_HTTP_HOST },
  }
}

function waitForAbort(signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return new Promise(() => {})
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}

/** The streamer a `StreamConfig` describes, on the runtime's pool and publisher. */
function configuredStreamer(config: StreamConfig, runtime: Runtime, logger: Logger): Streamer {
  return createStreamer({
    connectionString: config.relay.databaseUrl,
    pool: runtime.pool,
    publisher: runtime.publisher,
    table: config.relay.engine?.table,
    slot: config.slot,
    publication: config.publication,
    batchSize: config.batchSize,
    deadLetterPolicy: config.relay.engine?.deadLetterPolicy,
    standbyRetryMs: config.standbyRetryMs,
    lingerMs: config.lingerMs,
    publishedRows: config.publishedRows,
    lagAlertBytes: config.lagAlertBytes,
    healthCheckMs: config.healthCheckMs,
    streamId: config.relay.engine?.relayId,
    preparedStatements: config.relay.engine?.preparedStatements,
    applicationName: applicationName(config.relay),
    // Degraded is a warning, so it shows even with --quiet: this is what the DBA has to hear of.
    onHealthChange: (stats) =>
      stats.health === 'ok'
        ? log(
            logger,
            'info',
            `stream healthy again (slot ${config.slot}, lag ${stats.lagBytes ?? '?'} bytes)`,
          )
        : log(logger, 'warn', `stream degraded (slot ${config.slot}): ${stats.problems.join('; ')}`),
    logger,
  })
}

/** Streams (with the stats endpoint and retention, if configured) until `signal` aborts. */
async function streamUntilAborted(
  config: StreamConfig,
  runtime: Runtime,
  logger: Logger,
  signal: AbortSignal | undefined,
): Promise<void> {
  const streamer = configuredStreamer(config, runtime, logger)
  await streamer.start()
  const http = config.http ? await serveStreamStats(() => streamer.stats(), config.http) : undefined
  if (http)
    log(logger, 'info', `stream stats on ${http.url}/stats and ${http.url}/metrics`, { url: http.url })
  const retention = startRetention(config.relay, runtime, logger)
  try {
    await waitForAbort(signal)
  } finally {
    await retention?.stop()
    await http?.close()
    await streamer.stop()
  }
}

/** `--drop-slot`: uninstalls and prints what was dropped. */
async function dropSlotCommand(
  config: StreamConfig,
  runtime: Runtime,
  stdout: { write(text: string): unknown },
): Promise<void> {
  const result = await dropStreamSetup(runtime.pool, { slot: config.slot, publication: config.publication })
  stdout.write(`${JSON.stringify({ slot: config.slot, publication: config.publication, ...result })}\n`)
}

/**
 * Runs `outbox-relay stream` (argv after the command name); returns the exit code: 0 after a
 * signal or a successful `--drop-slot`, 1 on a runtime failure, 2 on bad configuration.
 */
export async function streamMain(
  argv: string[],
  io: {
    env: Record<string, string | undefined>
    stdout: { write(text: string): unknown }
    stderr: ProgressStream
    signal?: AbortSignal | undefined
  },
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(STREAM_USAGE)
    return 0
  }
  let config: StreamConfig
  try {
    config = loadStreamConfig(argv, io.env)
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`outbox-relay: ${error.message}\n`)
      return 2
    }
    throw error
  }
  const logger = cliLogger(config.relay, io.stderr)
  try {
    const runtime = await createRuntime(config.relay, { logger })
    try {
      if (config.dropSlot) await dropSlotCommand(config, runtime, io.stdout)
      else await streamUntilAborted(config, runtime, logger, io.signal)
      return 0
    } finally {
      await runtime.close()
    }
  } catch (error) {
    log(logger, 'error', `stream failed: ${coerceError(error, 1000)}`)
    return 1
  }
}
