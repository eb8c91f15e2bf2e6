/**
 * Bad-input sweep of the relay's HTTP API, run as the real CLI (`outbox-relay serve`) against the
 * chaos database: every case must answer 4xx with a JSON `{ error: { code, message } }`, the
 * service must keep serving, and the database must be unchanged (fingerprint before and after).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import type pg from 'pg'
import { auth, Prober, post, probeAll, SECRET, type SweepCase, TOKEN } from './sweep-cases.ts'
import { log, ROOT, sleep } from './util.ts'

export type { SweepCase } from './sweep-cases.ts'

export interface SweepReport {
  cases: SweepCase[]
  failed: number
  stillServing: boolean
  dbUnchanged: boolean
  before: string
  after: string
  serverExitedEarly: boolean
  /** Requests that failed on a socket the server had closed (retried once on a new one). */
  keepAliveResets: string[]
}

/** A fingerprint of every outbox row's state (and the other tables' sizes). */
export async function dbFingerprint(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query(`SELECT
    (SELECT count(*) FROM outbox_event) AS rows,
    (SELECT json_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM outbox_event GROUP BY status) s) AS by_status,
    (SELECT coalesce(sum(attempts), 0) FROM outbox_event) AS attempts,
    (SELECT md5(coalesce(string_agg(concat_ws('|', id, status, attempts, available_at, locked_by, locked_until, last_error, published_at), ',' ORDER BY seq), ''))
       FROM outbox_event) AS state_md5,
    (SELECT count(*) FROM employee) AS employees,
    (SELECT count(*) FROM outbox_inbox) AS inbox`)
  return JSON.stringify(rows[0])
}

/** Starts `outbox-relay serve` on `port` and waits (up to 30 s) until its health check answers. */
async function startServe(opts: {
  databaseUrl: string
  brokers: string
  port: number
}): Promise<ChildProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(ROOT, 'packages/relay/bin/outbox-relay.mjs'), 'serve'],
    {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: opts.databaseUrl,
        KAFKA_BROKERS: opts.brokers,
        RELAY_TOKEN: TOKEN,
        RELAY_WEBHOOK_SECRET: SECRET,
        PORT: String(opts.port),
        HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${opts.port}/health`)).ok) return child
    } catch {
      // not up yet
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start: ${stderr}`)
    await sleep(200)
  }
}

/** Health, stats and a real (empty) drain all answer 200; what the drain published. */
async function checkServing(base: string): Promise<{ serving: boolean; published: number | undefined }> {
  const health = await fetch(`${base}/health`)
  const stats = await fetch(`${base}/stats`, { headers: auth })
  const drain = await fetch(`${base}/drain`, post('{"maxEvents":1}'))
  const drainBody = (await drain.json()) as { published?: number }
  await health.text()
  await stats.text()
  const serving = health.status === 200 && stats.status === 200 && drain.status === 200
  return { serving, published: drainBody.published }
}

export async function runSweep(opts: {
  databaseUrl: string
  brokers: string
  port: number
  pool: pg.Pool
}): Promise<SweepReport> {
  const base = `http://127.0.0.1:${opts.port}`
  const child = await startServe(opts)
  const before = await dbFingerprint(opts.pool)
  const prober = new Prober(base)
  await probeAll(prober)
  const { cases, keepAliveResets } = prober

  // the service keeps serving: health, stats and a real (empty) drain
  const { serving, published } = await checkServing(base)
  const stillServing = serving && child.exitCode === null
  const after = await dbFingerprint(opts.pool)
  const serverExitedEarly = child.exitCode !== null
  child.kill('SIGTERM')
  await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))
  const failed = cases.filter((c) => !c.ok).length
  log(
    `sweep: ${cases.length} cases, ${failed} failed; still serving ${stillServing} (drain published ${published}); db unchanged ${before === after}`,
  )
  return {
    cases,
    failed,
    stillServing,
    dbUnchanged: before === after,
    before,
    after,
    serverExitedEarly,
    keepAliveResets,
  }
}
