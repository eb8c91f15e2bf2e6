/**
 * The `outbox-relay` command line: `serve`, `drain`, `watch`, `stream`, and the database-only
 * `stats`, `dead`, `purge`.
 * @module
 */
import { createRequire } from 'node:module'
import pg from 'pg'
import type { DrainResult } from '../core/engine.js'
import { coerceError, isRelayError } from '../core/errors.js'
import { type Logger, log } from '../core/log.js'
import type { Retention } from '../core/retention.js'
import { createWatcher } from '../core/watch.js'
import { createRelayApp } from '../http/app.js'
import { kafkaHealthCheck } from '../publishers/kafka-health.js'
import { streamMain } from '../stream/cli.js'
import { COMMANDS, ConfigError, loadConfig, type RelayConfig, USAGE, wantsHelp } from './config.js'
import { deadMain } from './dead-command.js'
import { COMMAND_HELP } from './help.js'
import { relayConnectionConfig } from './pool.js'
import { drainProgress, type ProgressStream } from './progress.js'
import { purgeMain } from './purge-command.js'
import { startRetention } from './retention-config.js'
import { applicationName, cliLogger, createRuntime } from './runtime.js'
import { serveRelay } from './server.js'
import { statsMain } from './stats-command.js'

/** Exit codes of the CLI. */
export const EXIT = {
  /**
   * `drain`: everything due was published. `serve`/`watch`: stopped by SIGINT/SIGTERM (a clean
   * stop). `stats`/`dead`/`purge`: done (also a purge that found another relay purging).
   */
  OK: 0,
  /**
   * `drain`: a publish failed (retried), rows went dead, or due rows remain. `dead show`: no dead
   * row with that id. Any runtime failure (database unreachable, …).
   */
  FAILED: 1,
  /** Bad configuration or usage: nothing was attempted. */
  CONFIG: 2,
  /** `drain` stopped by SIGINT (128 + 2), after its batch in flight. */
  SIGINT: 130,
  /** `drain` stopped by SIGTERM (128 + 15), after its batch in flight. */
  SIGTERM: 143,
} as const

/** Where the CLI reads and writes; `process` by default, fakes in tests. */
export interface CliIO {
  env: Record<string, string | undefined>
  stdout: { write(text: string): unknown }
  stderr: ProgressStream
  /**
   * Aborted to stop (the bin wires SIGINT and SIGTERM to it, with the signal's name as the
   * abort reason: `'SIGINT'` or `'SIGTERM'`).
   */
  signal?: AbortSignal | undefined
}

/** The exit code of a `drain` stopped by `signal`: 130 for SIGINT, 143 for SIGTERM. */
function stoppedCode(signal: AbortSignal): number {
  return signal.reason === 'SIGINT' ? EXIT.SIGINT : EXIT.SIGTERM
}

/**
 * The exit code of `drain`: 0 when the drain published everything that was due (nothing
 * retried, nothing dead, nothing remaining), else 1 — a cron wrapper can alert or run again.
 */
export function drainExitCode(result: DrainResult): number {
  return result.retried === 0 && result.dead === 0 && result.remaining === 0 ? EXIT.OK : EXIT.FAILED
}

function waitForAbort(signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return new Promise(() => {})
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}

async function drainCommand(config: RelayConfig, io: CliIO, logger: Logger): Promise<number> {
  const progress = drainProgress(config.quiet ? { write() {}, isTTY: false } : io.stderr)
  const runtime = await createRuntime(config, { hooks: progress.hooks, logger })
  try {
    const result = await runtime.engine.drain({ ...config.drain, signal: io.signal })
    progress.done()
    io.stdout.write(`${JSON.stringify(result)}\n`)
    if (io.signal?.aborted) {
      log(logger, 'warn', `drain stopped by ${String(io.signal.reason)} after its batch in flight`)
      return stoppedCode(io.signal)
    }
    return drainExitCode(result)
  } finally {
    await runtime.close()
  }
}

async function serveCommand(config: RelayConfig, io: CliIO, logger: Logger): Promise<number> {
  const runtime = await createRuntime(config, { logger })
  const broker = kafkaHealthCheck(runtime.kafka)
  try {
    const app = createRelayApp({
      engine: runtime.engine,
      pool: runtime.pool,
      auth: config.http.auth,
      maxBudgetMs: config.http.maxBudgetMs,
      metrics: runtime.metrics,
      checkBroker: broker.check,
      signal: io.signal,
      retention: config.retention?.policy,
      logger,
    })
    const server = await serveRelay(app, { port: config.http.port, hostname: config.http.host })
    const auth = config.http.auth === 'none' ? 'none' : 'on'
    log(logger, 'info', `listening on ${server.url} (auth: ${auth})`, { url: server.url, auth })
    const retention = startRetention(config, runtime, logger)
    await waitForAbort(io.signal)
    log(logger, 'info', 'stopping (waiting for running drains)')
    await retention?.stop()
    await server.close()
    return EXIT.OK
  } finally {
    await broker.close()
    await runtime.close()
  }
}

async function watchCommand(config: RelayConfig, io: CliIO, logger: Logger): Promise<number> {
  const runtime = await createRuntime(config, { logger })
  const watcher = createWatcher({
    engine: runtime.engine,
    createClient: () =>
      new pg.Client(relayConnectionConfig(config.databaseUrl, { applicationName: applicationName(config) })),
    pollMs: config.watch.pollMs,
    debounceMs: config.watch.debounceMs,
    drain: {
      maxEvents: config.drain.maxEvents,
      budgetMs: config.drain.budgetMs,
      topics: config.drain.topics,
    },
    logger,
  })
  let retention: Retention | undefined
  try {
    await watcher.start()
    retention = startRetention(config, runtime, logger)
    await waitForAbort(io.signal)
    await retention?.stop()
    await watcher.stop()
    return EXIT.OK
  } finally {
    await retention?.stop()
    await watcher.stop()
    await runtime.close()
  }
}

/** The commands that need only the database. */
const ADMIN_COMMANDS: Record<string, ((argv: string[], io: CliIO) => Promise<number>) | undefined> = {
  stats: statsMain,
  dead: deadMain,
  purge: purgeMain,
}

/** The package's version (package.json sits two folders up from src/cli and dist/cli). */
export function version(): string {
  const pkg = createRequire(import.meta.url)('../../package.json') as { version: string }
  return `outbox-relay ${pkg.version}`
}

/**
 * Runs one CLI invocation and returns its exit code; never throws.
 *
 * @param argv - arguments after the program name
 * @param [io] - process streams and env by default
 * @example
 * process.exitCode = await main(['drain', '--max-events', '1000'])
 */
export async function main(argv: string[], io: Partial<CliIO> = {}): Promise<number> {
  const full: CliIO = {
    env: io.env ?? process.env,
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    signal: io.signal,
  }
  const [first, ...rest] = argv
  if (first === 'stream') return streamMain(rest, full)
  if (first === '--version' || first === '-v' || first === 'version') {
    full.stdout.write(`${version()}\n`)
    return EXIT.OK
  }
  const admin = first === undefined ? undefined : ADMIN_COMMANDS[first]
  if (admin) return admin(rest, full)
  if (first === 'help' && rest[0] && rest[0] in COMMAND_HELP) {
    full.stdout.write(COMMAND_HELP[rest[0] as keyof typeof COMMAND_HELP])
    return EXIT.OK
  }
  if (wantsHelp(argv)) {
    const command = (COMMANDS as readonly string[]).includes(first ?? '')
      ? (first as keyof typeof COMMAND_HELP)
      : undefined
    full.stdout.write(command ? COMMAND_HELP[command] : USAGE)
    return argv.length === 0 ? EXIT.CONFIG : EXIT.OK
  }
  let config: RelayConfig
  try {
    config = loadConfig(argv, full.env)
  } catch (error) {
    if (error instanceof ConfigError) {
      full.stderr.write(`outbox-relay: ${error.message}\n`)
      return EXIT.CONFIG
    }
    full.stderr.write(`outbox-relay: invalid configuration: ${coerceError(error, 1000)}\n`)
    return EXIT.CONFIG
  }
  const logger = cliLogger(config, full.stderr)
  try {
    if (config.command === 'drain') return await drainCommand(config, full, logger)
    if (config.command === 'serve') return await serveCommand(config, full, logger)
    return await watchCommand(config, full, logger)
  } catch (error) {
    if (isRelayError(error, 'RELAY_INVALID_OPTIONS')) {
      log(logger, 'error', `invalid configuration: ${error.message}`)
      return EXIT.CONFIG
    }
    log(logger, 'error', `${config.command} failed: ${coerceError(error, 1000)}`)
    return EXIT.FAILED
  }
}

/**
 * What the `outbox-relay` bin calls: `main` with SIGINT/SIGTERM wired to a graceful stop.
 * @internal
 */
export async function run(argv: string[]): Promise<number> {
  const controller = new AbortController()
  const onSignal = (name: 'SIGINT' | 'SIGTERM') => {
    if (!controller.signal.aborted) {
      controller.abort(name)
      return
    }
    // A second signal: stop now, without waiting for the batch in flight.
    process.stderr.write(`outbox-relay: second ${name}, exiting at once\n`)
    process.exit(name === 'SIGINT' ? EXIT.SIGINT : EXIT.SIGTERM)
  }
  const onInt = () => onSignal('SIGINT')
  const onTerm = () => onSignal('SIGTERM')
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  try {
    return await main(argv, { signal: controller.signal })
  } finally {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
  }
}
