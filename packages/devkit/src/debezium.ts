/**
 * Debezium's outbox EventRouter in a Kafka Connect standalone worker, for tests and the bench:
 * a thin wrapper over `scripts/debezium.sh` (which fetches and caches the jars with Maven).
 * @module
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { kafkaBrokers } from './kafka.js'

/** The project script (from src/ or dist/, both two levels under the package). */
export const DEBEZIUM_SCRIPT = fileURLToPath(new URL('../../../scripts/debezium.sh', import.meta.url))

export interface DebeziumOptions {
  /** `postgresql://user:password@host:port/dbname` of a server with `wal_level = logical`. */
  databaseUrl: string
  /** Replication slot Debezium creates and reads (default `debezium_outbox`). */
  slot?: string
  /** Publication it reads (default `debezium_outbox`). */
  publication?: string
  /** `filtered` (default) lets Debezium create the publication; `disabled` when it exists already. */
  publicationAutocreate?: 'filtered' | 'disabled'
  /** How long the connector sleeps when the slot had nothing (Debezium's default: 500 ms). */
  pollIntervalMs?: number
  /** How often offsets (and so the slot's confirmed position) are flushed (default 1000 ms here). */
  offsetFlushMs?: number
  brokers?: string[]
  /** Longest wait for the worker to stream, seconds (default 120). */
  startTimeoutS?: number
}

export interface DebeziumWorker {
  /** Pid of the Kafka Connect JVM. */
  pid: number
  /** Where its config, offsets and log live (deleted by `stop`). */
  stateDir: string
  /** The worker's log so far. */
  log(): string
  /** Stops the worker (SIGTERM, SIGKILL after 20 s) and deletes its state directory. */
  stop(): Promise<void>
}

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [DEBEZIUM_SCRIPT, ...args], { env, timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`scripts/debezium.sh ${args.join(' ')} failed: ${stderr || error.message}`))
      else resolve(stdout)
    })
  })
}

/** The cache folder of the jars (`PRISMA_OUTBOX_CACHE`, default ~/.cache/prisma-outbox). */
function cacheRoot(): string {
  return join(process.env.PRISMA_OUTBOX_CACHE ?? join(homedir(), '.cache', 'prisma-outbox'), 'debezium')
}

/** Why Debezium cannot run without downloading first (no cached jars), or undefined when it can. */
export function debeziumNotCached(): string | undefined {
  const pom = readFileSync(
    fileURLToPath(new URL('../../../scripts/debezium/connect-pom.xml', import.meta.url)),
    'utf8',
  )
  const connector = readFileSync(
    fileURLToPath(new URL('../../../scripts/debezium/connector-pom.xml', import.meta.url)),
    'utf8',
  )
  const kafka = /<kafka\.version>([^<]+)</.exec(pom)?.[1]
  const debezium = /<debezium\.version>([^<]+)</.exec(connector)?.[1]
  const marks = [
    join(cacheRoot(), `connect-${kafka}-libs`, '.complete'),
    join(cacheRoot(), `debezium-${debezium}-plugins`, 'debezium-connector-postgres', '.complete'),
  ]
  const missing = marks.filter((m) => !existsSync(m))
  return missing.length === 0
    ? undefined
    : `Debezium ${debezium} / Kafka Connect ${kafka} jars are not cached (run: bash scripts/debezium.sh fetch)`
}

/** Downloads and caches the jars once (Maven; minutes on a cold machine). */
export async function fetchDebezium(): Promise<void> {
  await run(['fetch'], process.env, 15 * 60_000)
}

/**
 * Starts a Kafka Connect standalone worker running Debezium's PostgreSQL connector + outbox
 * EventRouter on `outbox_event`, and resolves once it streams from its slot (created on first
 * start with `snapshot.mode=no_data`: only rows committed afterwards are published).
 *
 * @example
 * const worker = await startDebezium({ databaseUrl: db.url, slot: 'dbz' })
 * try { ... } finally { await worker.stop() }
 */
export async function startDebezium(options: DebeziumOptions): Promise<DebeziumWorker> {
  const stateDir = await mkdtemp(join(tmpdir(), 'outbox-debezium-'))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DEBEZIUM_STATE_DIR: stateDir,
    DEBEZIUM_DATABASE_URL: options.databaseUrl,
    DEBEZIUM_SLOT: options.slot ?? 'debezium_outbox',
    DEBEZIUM_PUBLICATION: options.publication ?? 'debezium_outbox',
    DEBEZIUM_PUBLICATION_AUTOCREATE: options.publicationAutocreate ?? 'filtered',
    DEBEZIUM_POLL_INTERVAL_MS: String(options.pollIntervalMs ?? 500),
    DEBEZIUM_OFFSET_FLUSH_MS: String(options.offsetFlushMs ?? 1000),
    DEBEZIUM_START_TIMEOUT: String(options.startTimeoutS ?? 120),
    KAFKA_BROKERS: (options.brokers ?? kafkaBrokers()).join(','),
  }
  const logFile = join(stateDir, 'connect.log')
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
  try {
    await run(['start'], env, ((options.startTimeoutS ?? 120) + 15 * 60) * 1000)
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true })
    throw error
  }
  const pid = Number(readFileSync(join(stateDir, 'connect.pid'), 'utf8').trim())
  let stopped: Promise<void> | undefined
  return {
    pid,
    stateDir,
    log,
    stop() {
      stopped ??= run(['stop'], env, 60_000).then(() => rm(stateDir, { recursive: true, force: true }))
      return stopped
    },
  }
}
