/**
 * Liveness faults: a relay frozen (SIGSTOP) while it holds the claim lock, one frozen while it
 * holds leased rows, a broker frozen (SIGSTOP), and a storm of terminated connections. Each
 * returns what it measured; run.ts puts them on the timeline and into the report.
 */
import { CLAIM_LOCK_KEY } from '@prisma-outbox/relay'
import pg from 'pg'
import type { PrivateKafka } from './infra.ts'
import type { RelayFleet } from './relays.ts'
import { log, sleep } from './util.ts'

const RELAY_APP = /^outbox-relay (chaos-r\d+-\d+)$/

/** `pg_terminate_backend` on every relay connection every `everyMs`, for `seconds`. */
export async function terminationStorm(
  pool: pg.Pool,
  seconds: number,
  everyMs: number,
): Promise<{ rounds: number; terminated: number }> {
  const ends = Date.now() + seconds * 1000
  let rounds = 0
  let terminated = 0
  while (Date.now() < ends) {
    const { rows } = await pool
      .query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE 'outbox-relay %') t`,
      )
      .catch(() => ({ rows: [{ n: 0 }] }))
    rounds++
    terminated += rows[0]?.n ?? 0
    await sleep(everyMs)
  }
  return { rounds, terminated }
}

/**
 * Freezes a relay while it holds the claim lock: the harness takes the lock itself, waits until a
 * relay's claim queues behind it, SIGSTOPs that relay and hands the lock over. Then it measures
 * how long until ANOTHER relay is granted the lock (claims resume), keeps the relay frozen for
 * `frozenMs` in all, and lets it go (SIGCONT): its session is gone by then, and it must carry on.
 */
export async function freezeRelayHoldingLock(
  databaseUrl: string,
  fleet: RelayFleet,
  frozenMs: number,
): Promise<{ relayId: string; resumeMs: number | null }> {
  const holder = new pg.Client({ connectionString: databaseUrl, application_name: 'chaos-harness' })
  holder.on('error', () => {})
  await holder.connect()
  const waiting = async () =>
    (
      await holder.query<{ app: string }>(
        `SELECT application_name AS app FROM pg_stat_activity
         WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%' AND application_name LIKE 'outbox-relay %'`,
      )
    ).rows.map((r) => r.app)
  try {
    await holder.query('SELECT pg_advisory_lock($1::bigint)', [CLAIM_LOCK_KEY])
    let relayId: string | undefined
    const deadline = Date.now() + 30_000
    while (!relayId && Date.now() < deadline) {
      const app = (await waiting())[0]
      const id = app ? RELAY_APP.exec(app)?.[1] : undefined
      const child = id ? fleet.processOf(id) : undefined
      if (!id || !child) {
        await sleep(20)
        continue
      }
      child.kill('SIGSTOP')
      // Still queued for the lock? (Its wait may have ended between the look and the stop.)
      if ((await waiting()).includes(`outbox-relay ${id}`)) relayId = id
      else child.kill('SIGCONT')
    }
    if (!relayId) {
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [CLAIM_LOCK_KEY])
      log('FAULT frozen relay: no relay queued for the claim lock within 30 s; skipped')
      return { relayId: '(none)', resumeMs: null }
    }
    const frozen = fleet.processOf(relayId)
    await holder.query('SELECT pg_advisory_unlock($1::bigint)', [CLAIM_LOCK_KEY])
    const t0 = performance.now()
    let resumeMs: number | null = null
    while (resumeMs === null && performance.now() - t0 < frozenMs + 60_000) {
      const { rows } = await holder.query<{ app: string }>(
        `SELECT a.application_name AS app FROM pg_locks l JOIN pg_stat_activity a USING (pid)
         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'outbox-relay %'`,
      )
      if (rows.some((r) => r.app !== `outbox-relay ${relayId}`)) resumeMs = performance.now() - t0
      else await sleep(10)
    }
    await sleep(Math.max(0, frozenMs - (performance.now() - t0)))
    frozen?.kill('SIGCONT')
    return { relayId, resumeMs }
  } finally {
    await holder.end().catch(() => {})
  }
}

/**
 * Freezes a relay while it holds leased rows (a batch in flight) for `frozenMs`, then lets it go.
 * The rows come back when the lease expires; they are recorded as the frozen relay's in-flight
 * batch (they may repeat once it wakes up, like a crashed relay's).
 */
export async function freezeRelayHoldingClaims(
  pool: pg.Pool,
  fleet: RelayFleet,
  frozenMs: number,
): Promise<{ relayId: string; rows: number }> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const { rows } = await pool.query<{ locked_by: string }>(
      `SELECT locked_by FROM outbox_event WHERE status = 'pending' AND locked_until > now()
       AND locked_by LIKE 'chaos-r%' LIMIT 1`,
    )
    const relayId = rows[0]?.locked_by
    const child = relayId ? fleet.processOf(relayId) : undefined
    if (!relayId || !child) {
      await sleep(10)
      continue
    }
    child.kill('SIGSTOP')
    const leased = await pool.query<{ id: string }>(
      `SELECT id::text FROM outbox_event WHERE status = 'pending' AND locked_by = $1 AND locked_until > now()`,
      [relayId],
    )
    if (leased.rows.length === 0) {
      child.kill('SIGCONT')
      continue
    }
    fleet.recordFreeze(
      relayId,
      leased.rows.map((r) => r.id),
    )
    await sleep(frozenMs)
    child.kill('SIGCONT')
    return { relayId, rows: leased.rows.length }
  }
  log('FAULT frozen relay with claims: no relay held leased rows within 30 s; skipped')
  return { relayId: '(none)', rows: 0 }
}

/** SIGSTOPs the broker for `ms`, then SIGCONT. */
export async function freezeBroker(kafka: PrivateKafka, ms: number): Promise<void> {
  kafka.signal('SIGSTOP')
  try {
    await sleep(ms)
  } finally {
    kafka.signal('SIGCONT')
  }
}
