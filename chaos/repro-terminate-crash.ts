/**
 * Repro: `outbox-relay watch` dies with "Unhandled 'error' event" (Connection terminated
 * unexpectedly) when its database connections are terminated while it drains.
 *   npx tsx chaos/repro-terminate-crash.ts
 * One relay, a steady stream of inserts, and pg_terminate_backend on the relay's connections every
 * 500 ms, for at most 60 s. Uses a private PostgreSQL and broker of its own (fresh folder and free ports, as a chaos run).
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import pg from 'pg'
import { startPrivateKafka, startPrivatePostgres } from './infra.ts'
import { ROOT, sleep } from './util.ts'
import { choosePorts, takeWorkspace } from './workspace.ts'

const workspace = takeWorkspace(process.env.CHAOS_DATA_DIR)
const dataDir = workspace.dir
const ports = await choosePorts(process.env)
const db = await startPrivatePostgres(join(dataDir, 'pg'), ports.pg)
const k = await startPrivateKafka(join(dataDir, 'kafka'), ports.kafka, ports.controller)
const pool = new pg.Pool({ connectionString: db.url, application_name: 'repro' })
pool.on('error', () => {})
let output = ''
const relay = spawn(
  process.execPath,
  [join(ROOT, 'packages/relay/bin/outbox-relay.mjs'), 'watch', '--quiet'],
  {
    env: {
      PATH: process.env.PATH,
      NODE_OPTIONS: process.env.REPRO_NODE_OPTIONS ?? '',
      DATABASE_URL: db.url,
      KAFKA_BROKERS: k.brokers,
      DRAIN_BATCH_SIZE: '50',
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  },
)
relay.stderr.on('data', (d: Buffer) => {
  output += d.toString()
})
const t0 = Date.now()
let terminations = 0
let rounds = 0
try {
  while (relay.exitCode === null && Date.now() - t0 < 60_000) {
    await pool
      .query(
        `INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, topic)
         SELECT gen_random_uuid(), 'r', 'k' || (g % 20), 'r.x', '{}', 'repro.terminate' FROM generate_series(1, 200) g`,
      )
      .catch(() => {})
    await sleep(200 + Math.random() * 300)
    const { rows } = await pool
      .query(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> 'repro'`,
      )
      .catch(() => ({ rows: [{ n: 0 }] }))
    terminations += rows[0]?.n ?? 0
    rounds++
  }
  const seconds = ((Date.now() - t0) / 1000).toFixed(1)
  if (relay.exitCode === null) {
    console.log(`relay survived ${rounds} rounds (${terminations} connections terminated) in ${seconds} s`)
    relay.kill('SIGTERM')
  } else {
    const lines = output.trim().split('\n')
    const i = lines.findIndex((l) => l.includes("Unhandled 'error' event"))
    console.log(
      `relay DIED (exit code ${relay.exitCode}) after ${rounds} rounds (${terminations} connections terminated) in ${seconds} s:`,
    )
    console.log(lines.slice(Math.max(0, i - 2), i + 8).join('\n'))
  }
} finally {
  await sleep(500)
  await pool.end()
  await k.close()
  await db.close()
  workspace.release()
}
