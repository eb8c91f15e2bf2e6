/**
 * Side by side on one private PostgreSQL cluster (wal_level = logical) and the shared broker:
 * writers alone, then with the polling relay (`outbox-relay watch`), the stream relay
 * (`outbox-relay stream`) and Debezium's EventRouter (Kafka Connect, scripts/debezium.sh), each
 * a process of its own. Interleaved: every repetition runs every relay once per shape.
 * - steady state: 2 writer connections insert R rows per transaction (1 and 100) for S seconds;
 * - latency: one writer commits 10 rows every 10 ms (about 1,000 events/s).
 * commit → append = the writer's COMMIT returning → the broker's append time of the message (its
 * topic has message.timestamp.type=LogAppendTime), same clock. CPU per event from /proc/<pid>/stat:
 * the relay process, the relay's database backends (every backend but the writers', walsenders
 * included) and the writers' backends (application_name bench-writer).
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process'
import {
  createTestDatabase,
  type DebeziumWorker,
  debeziumNotCached,
  kafkaBrokers,
  type LogicalPostgres,
  startDebezium,
  startLogicalPostgres,
  type TestDatabase,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import type { Kafka } from 'kafkajs'
import pg from 'pg'
import { benchKafka, cpuSecondsOf, log, OUTBOX_MIGRATIONS, ROOT, sleep, summarize } from './lib.js'

/**
 * `watch4`: four `outbox-relay watch` processes on the same table; `watch-delete`: one deleting
 * the rows it published (`RELAY_PUBLISHED_ROWS=delete`); `stream-delete`: the stream relay doing
 * the same (`STREAM_PUBLISHED_ROWS=delete`).
 */
export type SideMode = 'none' | 'watch' | 'watch-delete' | 'watch4' | 'stream' | 'stream-delete' | 'debezium'

/** Every mode, in the order a round runs them. */
const MODES: SideMode[] = ['none', 'watch', 'watch-delete', 'watch4', 'stream', 'stream-delete', 'debezium']

const isStream = (mode: SideMode) => mode === 'stream' || mode === 'stream-delete'

export interface SideRun {
  mode: SideMode
  rowsPerTx: number
  /** Paced at about 1,000 events/s (latency run) instead of as fast as the writers go. */
  paced: boolean
  events: number
  writersEventsPerSec: number
  /** First commit → last append. */
  relayEventsPerSec?: number
  p50Ms?: number
  p99Ms?: number
  /** CPU µs per event: relay process, relay's backends (of which its walsender), writers' backends. */
  cpuUs: { relay?: number; relayBackends?: number; walsender?: number; writerBackends: number }
  appended?: number
}

export interface SideBySideResult {
  seconds: number
  repeat: number
  /** Why Debezium was left out, when it was. */
  debeziumSkipped?: string
  runs: SideRun[]
  /**
   * Set when these runs come from a later `--only=sidebyside` run spliced into a saved full run:
   * when it started and the relay build it measured.
   */
  splicedFrom?: { startedAt: string; relayBuild: string }
}

const KEYS = 1_000
const WRITERS = 'bench-writer'
const PROBE = 'bench-probe'
const RELAY_BIN = `${ROOT}packages/relay/bin/outbox-relay.mjs`

const ticks = (pid: number) => cpuSecondsOf(pid) ?? 0

/** The cluster's client backends and walsenders, split into the writers' and everybody else's. */
async function backends(
  probe: pg.Pool,
): Promise<{ writers: number[]; relay: number[]; walsenders: number[] }> {
  const { rows } = await probe.query<{ pid: number; app: string; type: string }>(
    `SELECT pid, application_name AS app, backend_type AS type FROM pg_stat_activity
     WHERE backend_type IN ('client backend', 'walsender') AND pid <> pg_backend_pid()`,
  )
  const relay = rows.filter((r) => r.app !== WRITERS && r.app !== PROBE)
  return {
    writers: rows.filter((r) => r.app === WRITERS).map((r) => r.pid),
    relay: relay.map((r) => r.pid),
    walsenders: relay.filter((r) => r.type === 'walsender').map((r) => r.pid),
  }
}

/** CPU seconds per pid now. */
const ticksOf = (pids: number[]) => new Map(pids.map((pid) => [pid, ticks(pid)]))

/** CPU seconds since `before` of the pids there now; a backend started meanwhile counts in full. */
function ticksSince(before: Map<number, number>, pids: number[]): number {
  return pids.reduce((n, pid) => n + ticks(pid) - (before.get(pid) ?? 0), 0)
}

/** A relay of the run: its processes (one, or four for `watch4`). */
interface Relay {
  pids: number[]
  stop(): Promise<void>
}

function spawnRelay(
  mode: 'watch' | 'watch-delete' | 'stream' | 'stream-delete',
  db: TestDatabase,
  n = 0,
): Relay {
  const command = isStream(mode) ? 'stream' : 'watch'
  const child: ChildProcess = spawn(process.execPath, [RELAY_BIN, command], {
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      KAFKA_BROKERS: kafkaBrokers().join(','),
      STREAM_SLOT: 'bench_stream',
      STREAM_PUBLISHED_ROWS: mode === 'stream-delete' ? 'delete' : 'mark',
      RELAY_PUBLISHED_ROWS: mode === 'watch-delete' ? 'delete' : 'mark',
      RELAY_ID: `bench-${command}-${n}`,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    pids: child.pid === undefined ? [] : [child.pid],
    async stop() {
      child.kill('SIGTERM')
      await exited
    },
  }
}

/** Several relays as one. */
function together(relays: Relay[]): Relay {
  return {
    pids: relays.flatMap((r) => r.pids),
    stop: async () => {
      await Promise.all(relays.map((r) => r.stop()))
    },
  }
}

async function startRelay(mode: SideMode, db: TestDatabase): Promise<Relay | undefined> {
  if (mode === 'none') return undefined
  if (mode === 'watch' || mode === 'watch-delete' || isStream(mode)) return spawnRelay(mode, db)
  if (mode === 'watch4') return together([0, 1, 2, 3].map((n) => spawnRelay('watch', db, n)))
  await db.pool.query(`CREATE PUBLICATION debezium_outbox FOR TABLE outbox_event WITH (publish = 'insert')`)
  const worker: DebeziumWorker = await startDebezium({
    databaseUrl: db.url,
    publicationAutocreate: 'disabled',
    pollIntervalMs: 10,
  })
  return { pids: [worker.pid], stop: () => worker.stop() }
}

/** Message id → the broker's append time (ms), for every message of `topic`. */
async function appendTimes(kafka: Kafka, topic: string) {
  const appended = new Map<string, number>()
  const consumer = kafka.consumer({ groupId: uniqueTopic('bench-sbs'), maxWaitTimeInMs: 50 })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const id = m.headers?.id?.toString()
        if (id) appended.set(id, Number(m.timestamp))
      }
    },
  })
  return { appended, stop: () => consumer.disconnect() }
}

async function appendTopic(kafka: Kafka, prefix: string): Promise<string> {
  const topic = uniqueTopic(`bench.${prefix}`)
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions: 3,
          configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
        },
      ],
    })
  } finally {
    await admin.disconnect()
  }
  return topic
}

const INSERT = `INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, topic)
SELECT gen_random_uuid(), 'item', 'item-' || ((g + $3::int) % ${KEYS}), 'item.updated',
  jsonb_build_object('n', g, 'note', repeat('x', 96)), $2
FROM generate_series(1, $1::int) AS g RETURNING id::text`

/** Writers for `seconds`; commit time (epoch ms) per row id. */
async function write(
  pool: pg.Pool,
  o: { topic: string; rowsPerTx: number; seconds: number; paceMs?: number },
) {
  const commits = new Map<string, number>()
  const t0 = Date.now()
  const end = t0 + o.seconds * 1000
  let n = 0
  await Promise.all(
    Array.from({ length: o.paceMs ? 1 : 2 }, async () => {
      while (Date.now() < end) {
        const started = Date.now()
        const { rows } = await pool.query<{ id: string }>(INSERT, [o.rowsPerTx, o.topic, n++])
        const now = Date.now()
        for (const r of rows) commits.set(r.id, now)
        if (o.paceMs) await sleep(Math.max(0, o.paceMs - (now - started)))
      }
    }),
  )
  return { commits, seconds: (Date.now() - t0) / 1000 }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`side by side: timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** Rows each relay publishes before the measurement, so the JIT of Node and of the JVM is warm. */
const WARM_UP_ROWS = 5_000

/** The relay is up and warm when rows written now reach the topic. */
async function warmUp(db: TestDatabase, topic: string, appended: Map<string, number>, mode: SideMode) {
  if (isStream(mode))
    await waitFor(
      'the stream relay’s slot',
      async () => (await db.pool.query('SELECT 1 FROM pg_replication_slots WHERE active')).rowCount === 1,
      60_000,
    )
  const ids: string[] = []
  for (let i = 0; i < WARM_UP_ROWS / 50; i++)
    for (const r of (await db.pool.query<{ id: string }>(INSERT, [50, topic, i])).rows) ids.push(r.id)
  await waitFor(`${mode} to publish the warm-up rows`, () => ids.every((id) => appended.has(id)), 120_000)
}

interface RunShape {
  rowsPerTx: number
  seconds: number
  paceMs?: number
}

function resultOf(
  mode: SideMode,
  shape: RunShape,
  w: Awaited<ReturnType<typeof write>>,
  appended: Map<string, number>,
) {
  const events = w.commits.size
  const run: SideRun = {
    mode,
    rowsPerTx: shape.rowsPerTx,
    paced: shape.paceMs !== undefined,
    events,
    writersEventsPerSec: Math.round(events / w.seconds),
    cpuUs: { writerBackends: 0 },
  }
  if (mode === 'none') return run
  const latencies: number[] = []
  let first = Number.POSITIVE_INFINITY
  let last = 0
  for (const [id, at] of w.commits) {
    const appendedAt = appended.get(id)
    first = Math.min(first, at)
    if (appendedAt === undefined) continue
    last = Math.max(last, appendedAt)
    latencies.push(appendedAt - at)
  }
  const s = summarize(latencies)
  return {
    ...run,
    appended: latencies.length,
    relayEventsPerSec: Math.round(events / ((last - first) / 1000)),
    p50Ms: s.p50,
    p99Ms: s.p99,
  }
}

/** One run: fresh database and topic, the relay of `mode`, writers, wait for every append. */
async function oneRun(
  cluster: LogicalPostgres,
  kafka: Kafka,
  mode: SideMode,
  shape: RunShape,
): Promise<SideRun> {
  const db = await createTestDatabase({
    migrations: [OUTBOX_MIGRATIONS],
    baseUrl: cluster.url,
    prefix: 'bench_sbs',
  })
  const probe = new pg.Pool({ connectionString: db.url, max: 1, application_name: PROBE })
  // No idle timeout: the writers' backends must still exist when their CPU is read.
  const writers = new pg.Pool({
    connectionString: db.url,
    max: 2,
    application_name: WRITERS,
    idleTimeoutMillis: 0,
  })
  const topic = await appendTopic(kafka, `sbs-${mode}-${shape.rowsPerTx}`)
  const tap = mode === 'none' ? undefined : await appendTimes(kafka, topic)
  let relay: Relay | undefined
  try {
    relay = await startRelay(mode, db)
    if (tap) await warmUp(db, topic, tap.appended, mode)
    await Promise.all([writers.query('SELECT 1'), writers.query('SELECT 1')])
    const pids = await backends(probe)
    const before = {
      relay: relay ? ticksOf(relay.pids) : new Map<number, number>(),
      rb: ticksOf(pids.relay),
      wb: ticksOf(pids.writers),
    }
    const w = await write(writers, { topic, ...shape })
    const writerCpu = ticksSince(before.wb, (await backends(probe)).writers)
    if (tap)
      await waitFor(
        `${mode} to publish every row`,
        () => [...w.commits.keys()].every((id) => tap.appended.has(id)),
        180_000,
      )
    const after = await backends(probe)
    const perEvent = (t: number) => Math.round(((t * 1e6) / w.commits.size) * 10) / 10
    const run = resultOf(mode, shape, w, tap?.appended ?? new Map())
    run.cpuUs = {
      writerBackends: perEvent(writerCpu),
      ...(relay
        ? {
            relay: perEvent(ticksSince(before.relay, relay.pids)),
            relayBackends: perEvent(ticksSince(before.rb, after.relay)),
            ...(after.walsenders.length > 0
              ? { walsender: perEvent(ticksSince(before.rb, after.walsenders)) }
              : {}),
          }
        : {}),
    }
    log(`  ${mode}, ${shape.rowsPerTx} rows/tx${shape.paceMs ? ' paced' : ''}: ${JSON.stringify(run)}`)
    return run
  } finally {
    await relay?.stop()
    await tap?.stop()
    await writers.end()
    await probe.query(
      'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active_pid IS NOT NULL',
    )
    await probe.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active')
    await probe.end()
    await db.drop()
  }
}

/**
 * The whole scenario: `repeat` interleaved rounds of writers alone and each relay at 1 and 100
 * rows per transaction, then one paced latency run per relay.
 */
export async function sideBySide(options: {
  seconds: number
  repeat: number
  /** Relays to run (`none` = writers alone); default all. */
  modes?: string[]
  /** Rows per transaction of the steady-state runs, and `paced` for the latency run; default all. */
  shapes?: string[]
}): Promise<SideBySideResult> {
  const debeziumSkipped = debeziumNotCached()
  if (debeziumSkipped) log(`  Debezium left out: ${debeziumSkipped}`)
  const unknown = options.modes?.find((m) => !MODES.includes(m as SideMode))
  if (unknown !== undefined)
    throw new Error(`--side-modes: expected some of ${MODES.join(', ')}, got "${unknown}"`)
  const wanted = (m: SideMode) => !options.modes || options.modes.includes(m)
  const modes = MODES.filter((m) => wanted(m) && !(m === 'debezium' && debeziumSkipped))
  const shapes = options.shapes ?? ['1', '100', 'paced']
  const steadyShapes = shapes.filter((s) => s !== 'paced')
  const bad = steadyShapes.find((s) => !/^[1-9][0-9]*$/.test(s))
  if (bad !== undefined)
    throw new Error(`--side-shapes: expected rows per transaction or "paced", got "${bad}"`)
  const steady = steadyShapes.map(Number)
  const cluster = await startLogicalPostgres()
  const kafka = benchKafka('outbox-bench-sbs')
  const runs: SideRun[] = []
  try {
    for (let round = 1; round <= options.repeat; round++) {
      log(` round ${round}/${options.repeat}`)
      for (const rowsPerTx of steady)
        for (const mode of modes)
          runs.push(await oneRun(cluster, kafka, mode, { rowsPerTx, seconds: options.seconds }))
    }
    if (shapes.includes('paced'))
      for (const mode of modes.filter((m) => m !== 'none'))
        runs.push(await oneRun(cluster, kafka, mode, { rowsPerTx: 10, seconds: options.seconds, paceMs: 10 }))
  } finally {
    await cluster.stop()
  }
  return {
    seconds: options.seconds,
    repeat: options.repeat,
    runs,
    ...(debeziumSkipped ? { debeziumSkipped } : {}),
  }
}

/** The median run of each (mode, rows per transaction, paced), by the relay's (or writers') events/s. */
export function sideMedians(result: SideBySideResult): SideRun[] {
  const groups = new Map<string, SideRun[]>()
  for (const r of result.runs) {
    const key = `${r.mode}|${r.rowsPerTx}|${r.paced}`
    groups.set(key, [...(groups.get(key) ?? []), r])
  }
  return [...groups.values()].map((list) => {
    const score = (r: SideRun) => r.relayEventsPerSec ?? r.writersEventsPerSec
    const sorted = [...list].sort((a, b) => score(a) - score(b))
    return sorted[Math.floor((sorted.length - 1) / 2)] as SideRun
  })
}

const TARGETS = {
  streamVsDebezium100: 1.5,
  writersWithStream1: 0.95,
  p99Ms: 30,
  /** Four polling relays against one. */
  watch4VsWatch: 1,
  /** Polling relay's database CPU per event against Debezium's. */
  watchDbCpuVsDebezium: 2,
}

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? '–' : n.toLocaleString('en', { maximumFractionDigits: digits })

/** The targets of the side-by-side scenario, as `| target | measured | verdict |` rows. */
function targetRows(runs: SideRun[]): string[] {
  const find = (mode: SideMode, rowsPerTx: number, paced = false) =>
    runs.find((r) => r.mode === mode && r.rowsPerTx === rowsPerTx && r.paced === paced)
  const rows: string[] = []
  const verdict = (ok: boolean) => (ok ? 'met' : '**missed**')
  const d100 = find('debezium', 100)?.relayEventsPerSec
  const alone = find('none', 1)?.writersEventsPerSec
  for (const stream of ['stream', 'stream-delete'] as const) {
    const s100 = find(stream, 100)?.relayEventsPerSec
    if (s100 && d100)
      rows.push(
        `| ${stream} ≥ ${TARGETS.streamVsDebezium100} × Debezium at 100 rows/tx | ${fmt(s100 / d100, 2)} × (${fmt(s100)} vs ${fmt(d100)} events/s) | ${verdict(s100 / d100 >= TARGETS.streamVsDebezium100)} |`,
      )
    const withStream = find(stream, 1)?.writersEventsPerSec
    if (alone && withStream)
      rows.push(
        `| writers with ${stream} ≥ ${TARGETS.writersWithStream1} × writers alone at 1 row/tx | ${fmt(withStream / alone, 2)} × (${fmt(withStream)} vs ${fmt(alone)} events/s) | ${verdict(withStream / alone >= TARGETS.writersWithStream1)} |`,
      )
    for (const rowsPerTx of [1, 100]) {
      const ours = find(stream, rowsPerTx)?.cpuUs.relayBackends
      const theirs = find('debezium', rowsPerTx)?.cpuUs.relayBackends
      if (ours !== undefined && theirs !== undefined)
        rows.push(
          `| ${stream}: database CPU per event ≤ Debezium's at ${rowsPerTx} row(s)/tx | ${fmt(ours, 1)} vs ${fmt(theirs, 1)} µs | ${verdict(ours <= theirs)} |`,
        )
    }
  }
  for (const rowsPerTx of [1, 100]) {
    const one = find('watch', rowsPerTx)?.relayEventsPerSec
    const four = find('watch4', rowsPerTx)?.relayEventsPerSec
    if (one && four)
      rows.push(
        `| watch ×4 ≥ watch ×1 at ${rowsPerTx} row(s)/tx | ${fmt(four / one, 2)} × (${fmt(four)} vs ${fmt(one)} events/s) | ${verdict(four / one >= TARGETS.watch4VsWatch)} |`,
      )
    const theirs = find('debezium', rowsPerTx)?.cpuUs.relayBackends
    for (const watch of ['watch', 'watch-delete', 'watch4'] as const) {
      const ours = find(watch, rowsPerTx)?.cpuUs.relayBackends
      if (ours !== undefined && theirs !== undefined)
        rows.push(
          `| ${watch}: database CPU per event ≤ ${TARGETS.watchDbCpuVsDebezium} × Debezium's at ${rowsPerTx} row(s)/tx | ${fmt(ours, 1)} vs ${fmt(theirs, 1)} µs (${fmt(ours / theirs, 1)} ×) | ${verdict(ours <= TARGETS.watchDbCpuVsDebezium * theirs)} |`,
        )
    }
  }
  for (const mode of ['stream', 'stream-delete', 'watch', 'watch-delete', 'watch4', 'debezium'] as const) {
    const paced = find(mode, 10, true)
    if (paced?.p99Ms !== undefined)
      rows.push(
        `| ${mode}: p99 commit → append ≤ ${TARGETS.p99Ms} ms at 1,000 events/s | ${fmt(paced.p99Ms)} ms at ${fmt(paced.writersEventsPerSec)} events/s | ${verdict(paced.p99Ms <= TARGETS.p99Ms)} |`,
      )
  }
  return rows
}

const LABELS: Record<SideMode, string> = {
  none: 'writers alone',
  watch: 'polling relay (`outbox-relay watch`)',
  'watch-delete': 'polling relay deleting published rows (`RELAY_PUBLISHED_ROWS=delete`)',
  watch4: 'four polling relays (`outbox-relay watch` ×4)',
  stream: 'stream relay (`outbox-relay stream`)',
  'stream-delete': 'stream relay deleting published rows (`STREAM_PUBLISHED_ROWS=delete`)',
  debezium: 'Debezium EventRouter (Kafka Connect, poll.interval.ms 10)',
}

/** Markdown of the scenario: targets, then the median run of each shape. */
export function renderSideBySide(result: SideBySideResult): string[] {
  const medians = sideMedians(result)
  const L = ['## 7. Side by side: writers alone, polling relay, stream relay, Debezium', '']
  L.push(
    `One private PostgreSQL cluster (wal_level = logical), the shared broker; each relay is a process of its own, started on a fresh database and topic and warmed up with ${fmt(WARM_UP_ROWS)} rows. ` +
      `Steady state: 2 writer connections insert 1 or 100 rows per transaction for ${result.seconds} s, as fast as they can; latency: one writer commits 10 rows every 10 ms. ` +
      `Interleaved: ${result.repeat} round(s), each running every relay once per shape; the median round (by events/s) is shown. ` +
      'commit → append = the COMMIT returning in the writer → the broker appending the message (topic with LogAppendTime; same clock). ' +
      'CPU µs per event from /proc/<pid>/stat: the relay process (Node or the Connect JVM), the relay’s database backends (walsender included) and the writers’ backends. ' +
      'On a 2-core VM shared with other work: compare ratios within this run.',
  )
  if (result.splicedFrom)
    L.push(
      '',
      `Measured in a run of its own (\`--only=sidebyside\`), started ${result.splicedFrom.startedAt}, relay build \`${result.splicedFrom.relayBuild}\`, and spliced into this file: the other sections come from the run and build in the header.`,
    )
  if (result.debeziumSkipped) L.push('', `Debezium left out: ${result.debeziumSkipped}.`)
  L.push('', '| target | measured | verdict |', '|---|---|---|', ...targetRows(medians), '')
  L.push(
    '| relay | rows/tx | events | writers events/s | relay events/s | commit → append p50 / p99 ms | CPU µs/event relay / its backends (walsender) / writers’ backends | runs (relay events/s) |',
    '|---|---:|---:|---:|---:|---|---|---|',
  )
  for (const m of medians) {
    const runs = result.runs.filter(
      (r) => r.mode === m.mode && r.rowsPerTx === m.rowsPerTx && r.paced === m.paced,
    )
    L.push(
      `| ${LABELS[m.mode]} | ${m.rowsPerTx}${m.paced ? ' every 10 ms' : ''} | ${fmt(m.events)} | ${fmt(m.writersEventsPerSec)} | ${fmt(m.relayEventsPerSec)} | ${fmt(m.p50Ms)} / ${fmt(m.p99Ms)} | ${fmt(m.cpuUs.relay, 1)} / ${fmt(m.cpuUs.relayBackends, 1)}${m.cpuUs.walsender === undefined ? '' : ` (${fmt(m.cpuUs.walsender, 1)})`} / ${fmt(m.cpuUs.writerBackends, 1)} | ${runs.map((r) => fmt(r.relayEventsPerSec ?? r.writersEventsPerSec)).join(', ')} |`,
    )
  }
  L.push('')
  return L
}
