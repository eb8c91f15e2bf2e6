/**
 * `npm run bench [-- --quick] [-- --only=drain,write,latency,rss] [-- --rows=N …]`
 * Runs the four measurements against the real local PostgreSQL and Kafka, prints a table and
 * writes bench/RESULTS.md (bench/RESULTS.quick.md for --quick). See bench/README.md.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { type BulkResult, bulkWrites } from './bulk.js'
import { bareSendBatch, logDrain, naiveLoop, type RelayDrainResult, relayDrain } from './drain.js'
import { type LatencyResult, watchLatency } from './latency.js'
import { busyProcesses, type CpuSplit, freshDatabase, log, machineInfo, ROOT, sleep } from './lib.js'
import { comparePublishers, medianRun, type PublishersResult } from './publishers.js'
import { type RelayProfile, type RssResult, relayRss, summarizeProfile } from './rss.js'
import { renderSideBySide, type SideBySideResult, sideBySide } from './sidebyside.js'
import {
  type RelayTracingResult,
  relayTracingOverhead,
  type TracingResult,
  tracingOverhead,
} from './tracing.js'
import { type WriteResult, writeOverhead } from './write.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: process.env.npm_config_quick === 'true' },
    only: { type: 'string' },
    rows: { type: 'string' },
    keys: { type: 'string' },
    batch: { type: 'string' },
    relays: { type: 'string' },
    'naive-rows': { type: 'string' },
    writes: { type: 'string' },
    'bulk-rows': { type: 'string' },
    'latency-rate': { type: 'string' },
    'latency-seconds': { type: 'string' },
    'rss-rows': { type: 'string' },
    'profile-rows': { type: 'string' },
    'tracing-rows': { type: 'string' },
    sweep: { type: 'string' },
    'sweep-rows': { type: 'string' },
    out: { type: 'string' },
    'no-wait': { type: 'boolean', default: false },
    repeat: { type: 'string' },
    'max-wait': { type: 'string' },
    'publisher-rows': { type: 'string' },
    render: { type: 'string' },
    'side-seconds': { type: 'string' },
    'side-modes': { type: 'string' },
    'side-shapes': { type: 'string' },
  },
  strict: true,
})

const quick = args.quick === true
const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v.replaceAll('_', '')))
const cfg = {
  rows: num(args.rows, quick ? 20_000 : 200_000),
  keys: num(args.keys, 10_000),
  batch: num(args.batch, 500),
  relays: num(args.relays, 4),
  naiveRows: num(args['naive-rows'], quick ? 500 : 2_000),
  writes: num(args.writes, quick ? 600 : 3_000),
  /** Row counts of the bulk-write measurement. */
  bulkRows: (args['bulk-rows'] ?? '10000,100000')
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => Number(s.replaceAll('_', ''))),
  latencyRate: num(args['latency-rate'], quick ? 200 : 1_000),
  latencySeconds: num(args['latency-seconds'], quick ? 10 : 30),
  rssRows: num(args['rss-rows'], quick ? 100_000 : 1_000_000),
  profileRows: num(args['profile-rows'], quick ? 20_000 : 200_000),
  /** Rows of each round of the relay's tracing cost. */
  tracingRows: num(args['tracing-rows'], quick ? 10_000 : 50_000),
  sweep: (args.sweep ?? (quick ? '' : '100,1000,2000'))
    .split(',')
    .filter((s) => s.trim() !== '')
    .map(Number),
  sweepRows: num(args['sweep-rows'], quick ? 20_000 : 100_000),
  /** Repetitions of the ceiling and the main relay runs; the median is reported. */
  repeat: num(args.repeat, quick ? 1 : 3),
  /** Longest wait for other work to finish before each measurement, seconds. */
  maxWaitS: num(args['max-wait'], 600),
  /** Seconds of writing per side-by-side run. */
  sideSeconds: num(args['side-seconds'], quick ? 4 : 15),
  /** Side by side: which relays (`none` = writers alone) and shapes (rows/tx; `paced` = the latency run). */
  sideModes: (args['side-modes'] ?? 'none,watch,watch-delete,watch4,stream,stream-delete,debezium')
    .split(',')
    .map((s) => s.trim()),
  sideShapes: (args['side-shapes'] ?? '1,100,paced').split(',').map((s) => s.trim()),
  /** Backlog of the publisher comparison (`--only=publishers`). */
  publisherRows: num(args['publisher-rows'], quick ? 20_000 : 100_000),
}
const parts = new Set(
  (args.only ?? 'drain,write,latency,rss,bulk,tracing,sidebyside').split(',').map((s) => s.trim()),
)
const out = args.out ?? `${ROOT}bench/${quick ? 'RESULTS.quick.md' : 'RESULTS.md'}`

const TARGETS = {
  drainEventsPerSec: 25_000,
  drainVsCeiling: 0.6,
  drainVsNaive: 30,
  writeVsHandwritten: 1.1,
  bulkVsPlain10k: 2,
  watchP99Ms: 50,
  rssMB: 200,
}

interface Results {
  relay: RelayDrainResult[]
  naive?: Awaited<ReturnType<typeof naiveLoop>>
  ceiling?: Awaited<ReturnType<typeof bareSendBatch>> & { repeats?: number[] }
  ceilingSweep: Awaited<ReturnType<typeof bareSendBatch>>[]
  sweep: RelayDrainResult[]
  write?: WriteResult
  /** Absent in results saved before the tracing measurement existed. */
  tracing?: TracingResult
  /** Absent in results saved before the relay's tracing measurement existed. */
  relayTracing?: RelayTracingResult
  /** Absent in results saved before the bulk measurement existed. */
  bulk?: BulkResult[]
  latency: LatencyResult[]
  rss?: RssResult
  profile?: RelayProfile
  /** Absent in results saved before the side-by-side scenario existed. */
  sideBySide?: SideBySideResult
  /** Only with `--only=publishers` (not part of the default run). */
  publishers?: PublishersResult
}

/** Waits (up to `--max-wait` seconds) until no other work runs; false when it gave up. */
async function waitForQuietMachine(): Promise<boolean> {
  const deadline = performance.now() + cfg.maxWaitS * 1000
  for (let i = 0; ; i++) {
    const busy = busyProcesses()
    if (busy.length === 0) return true
    if (args['no-wait'] || performance.now() > deadline) {
      log(`WARNING: other work is running; measuring anyway (numbers disturbed):\n${busy.join('\n')}`)
      return false
    }
    if (i === 0) log(`other test runs / scripts are active; waiting for them to finish:\n${busy.join('\n')}`)
    await sleep(5_000)
  }
}

/** Measurements that overlapped other work even after repeating (named in the results). */
const disturbed: string[] = []

/**
 * Runs one measurement on a quiet machine: waits while other work is active, watches for it
 * during the measurement (every second) and repeats the measurement (up to twice) when some
 * showed up meanwhile.
 */
async function measure<T>(label: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const quiet = await waitForQuietMachine()
    const seen = new Set<string>()
    const watch = setInterval(() => {
      for (const p of busyProcesses()) seen.add(p)
    }, 1_000)
    let result: T
    try {
      result = await fn()
    } finally {
      clearInterval(watch)
    }
    for (const p of busyProcesses()) seen.add(p)
    if (seen.size === 0) return result
    if (!quiet || attempt >= 3) {
      log(`WARNING: ${label}: other work was running during it; keeping it, marked as disturbed`)
      disturbed.push(label)
      return result
    }
    log(`  ${label}: other work started meanwhile (${[...seen][0]}); repeating it`)
  }
}

/** Runs `fn` `cfg.repeat` times and returns the median run (by `score`), with all scores in `repeats`. */
async function repeated<T extends object>(
  fn: () => Promise<T>,
  score: (t: T) => number,
  each?: (t: T) => void,
): Promise<T & { repeats?: number[] }> {
  const runs: T[] = []
  for (let i = 0; i < cfg.repeat; i++) {
    if (cfg.repeat > 1) log(`  repetition ${i + 1}/${cfg.repeat}`)
    const t = await fn()
    if (cfg.repeat > 1) each?.(t)
    runs.push(t)
  }
  const sorted = [...runs].sort((a, b) => score(a) - score(b))
  const median = sorted[Math.floor((sorted.length - 1) / 2)] as T
  return cfg.repeat > 1 ? { ...median, repeats: runs.map(score) } : median
}

/** Options of a relay drain run, apart from its backlog. */
type DrainOpts = Omit<Parameters<typeof relayDrain>[0], 'rows' | 'keys'>

/** Part 1a/1b: the bare sendBatch ceiling, then the relay runs (×1, ×N, N drains on one engine). */
async function measureCeilingAndRelays(r: Results): Promise<void> {
  const { rows, keys, batch } = cfg
  log(' 1a. bare kafkajs sendBatch (ceiling)')
  r.ceiling = await repeated(
    () => measure('ceiling', () => bareSendBatch({ rows, keys, batchSize: batch })),
    (c) => c.eventsPerSec,
  )
  log(`  → ${Math.round(r.ceiling.eventsPerSec).toLocaleString('en')} events/s`)
  const relayRuns: { label: string; opts: DrainOpts }[] = [
    { label: 'relay ×1', opts: { relays: 1, batchSize: batch, explain: true } },
  ]
  if (cfg.relays > 1)
    relayRuns.push(
      { label: `relay ×${cfg.relays}`, opts: { relays: cfg.relays, batchSize: batch } },
      {
        label: `relay ${cfg.relays} drains on one engine`,
        opts: {
          relays: cfg.relays,
          batchSize: batch,
          sharedEngine: true,
          variant: `relay, ${cfg.relays} concurrent drains on one engine (one producer)`,
        },
      },
    )
  for (const run of relayRuns) {
    log(` 1b. ${run.label}, batch ${batch}`)
    const res = await repeated(
      () => measure(run.label, () => relayDrain({ rows, keys, ...run.opts })),
      (x) => x.eventsPerSec,
      (x) => logDrain(x),
    )
    logDrain(res)
    r.relay.push(res)
  }
}

/** Part 1d: the relay (×1) and the bare sendBatch at each batch size of `--sweep`. */
async function measureBatchSweep(r: Results): Promise<void> {
  const { keys, sweepRows: sr } = cfg
  for (const batchSize of cfg.sweep) {
    log(
      ` 1d. tuning: batch size ${batchSize} on ${sr.toLocaleString('en')} rows (relay ×1, and bare sendBatch)`,
    )
    const res = await measure(`batch ${batchSize}`, () =>
      relayDrain({ rows: sr, keys, relays: 1, batchSize }),
    )
    logDrain(res)
    r.sweep.push(res)
    const c = await measure(`ceiling batch ${batchSize}`, () => bareSendBatch({ rows: sr, keys, batchSize }))
    log(`  → ceiling at batch ${batchSize}: ${Math.round(c.eventsPerSec).toLocaleString('en')} events/s`)
    r.ceilingSweep.push(c)
  }
}

/** The tuning experiments of part 1e: table and connection settings, alone and combined. */
function tuningExperiments(): { variant: string; opts: DrainOpts }[] {
  const { batch, relays } = cfg
  return [
    { variant: 'default (relay ×1, reference for this table)', opts: { relays: 1, batchSize: batch } },
    {
      variant: 'fillfactor 70',
      opts: { relays: 1, batchSize: batch, setupSql: ['ALTER TABLE outbox_event SET (fillfactor = 70)'] },
    },
    {
      variant: 'fillfactor 40',
      opts: { relays: 1, batchSize: batch, setupSql: ['ALTER TABLE outbox_event SET (fillfactor = 40)'] },
    },
    {
      variant: "published rows deleted (publishedRows: 'delete')",
      opts: { relays: 1, batchSize: batch, publishedRows: 'delete' },
    },
    {
      variant: "synchronous_commit=off (relay's connections)",
      opts: { relays: 1, batchSize: batch, pgOptions: '-c synchronous_commit=off' },
    },
    {
      variant: `${relays} drains on one engine + synchronous_commit=off`,
      opts: { relays, batchSize: batch, sharedEngine: true, pgOptions: '-c synchronous_commit=off' },
    },
    {
      variant: `${relays} drains on one engine, batch 1000`,
      opts: { relays, batchSize: 1000, sharedEngine: true },
    },
    {
      variant: `all combined: fillfactor 40 + synchronous_commit=off + batch 1000 + ${relays} drains on one engine`,
      opts: {
        relays,
        batchSize: 1000,
        sharedEngine: true,
        pgOptions: '-c synchronous_commit=off',
        setupSql: ['ALTER TABLE outbox_event SET (fillfactor = 40)'],
      },
    },
  ]
}

/** Part 1e: each tuning experiment on `--sweep-rows` rows (only when a batch sweep runs). */
async function measureTuning(r: Results): Promise<void> {
  const { keys, sweepRows: sr } = cfg
  for (const e of tuningExperiments()) {
    log(` 1e. tuning: ${e.variant}, ${sr.toLocaleString('en')} rows`)
    const res = await measure(e.variant, () => relayDrain({ rows: sr, keys, ...e.opts, variant: e.variant }))
    logDrain(res)
    r.sweep.push(res)
  }
}

/** Part 1f: a CPU profile of a relay process draining `--profile-rows` rows. */
async function measureProfile(r: Results): Promise<void> {
  log(
    ` 1f. CPU profile of a relay process (node --cpu-prof) draining ${cfg.profileRows.toLocaleString('en')} rows`,
  )
  r.profile = await measure('profile', async () => {
    const dir = mkdtempSync(`${tmpdir()}/outbox-bench-prof-`)
    try {
      await relayRss({ rows: cfg.profileRows, keys: cfg.keys, batchSize: cfg.batch, cpuProfDir: dir })
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
      return file ? summarizeProfile(`${dir}/${file}`, cfg.profileRows) : undefined
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
}

/** Part 1: drain throughput. */
async function measureDrain(r: Results): Promise<void> {
  log(`1. drain throughput: ${cfg.rows.toLocaleString('en')} rows over ${cfg.keys.toLocaleString('en')} keys`)
  await measureCeilingAndRelays(r)
  log(` 1c. naive loop on ${cfg.naiveRows.toLocaleString('en')} rows`)
  r.naive = await measure('naive loop', () => naiveLoop({ rows: cfg.naiveRows, keys: cfg.keys }))
  log(`  → ${Math.round(r.naive.eventsPerSec).toLocaleString('en')} events/s`)
  await measureBatchSweep(r)
  if (cfg.sweep.length > 0) await measureTuning(r)
  if (cfg.profileRows > 0) await measureProfile(r)
}

/** Part 2: the extension's write overhead. */
async function measureWrite(r: Results): Promise<void> {
  log(`2. write overhead: ${cfg.writes.toLocaleString('en')} creates per variant and mode`)
  r.write = await measure('write overhead', () =>
    writeOverhead({ writes: cfg.writes, rounds: 3, warmup: quick ? 50 : 200 }),
  )
  const w = r.write.us
  log(
    `  → standalone µs/write: extension ${w.standalone.extension.toFixed(0)}, hand-written ${w.standalone.handwritten.toFixed(0)}, plain ${w.standalone.plain.toFixed(0)}`,
  )
}

/** Part 6: tracing's cost on writes, then on the relay. */
async function measureTracing(r: Results): Promise<void> {
  log(`6. tracing overhead: ${cfg.writes.toLocaleString('en')} creates per variant`)
  r.tracing = await measure('tracing overhead', () =>
    tracingOverhead({ writes: cfg.writes, rounds: 3, warmup: quick ? 50 : 200 }),
  )
  const u = r.tracing.us
  log(
    `  → µs/write: untraced ${u.untraced.toFixed(0)}, traceHeaders without a span ${u.noSpan.toFixed(0)}, inside a span ${u.activeSpan.toFixed(0)}`,
  )
  log(`6b. relay tracing: ${cfg.tracingRows.toLocaleString('en')} rows per round and variant, 3 rounds`)
  r.relayTracing = await measure('relay tracing', () =>
    relayTracingOverhead({ rows: cfg.tracingRows, keys: cfg.keys, batchSize: cfg.batch, rounds: 3 }),
  )
  const e = r.relayTracing.eventsPerSec
  log(`  → events/s: untraced ${e.untraced.toFixed(0)}, traced ${e.traced.toFixed(0)}`)
}

/** Part 3: watch-mode latency, per debounce. */
async function measureLatency(r: Results): Promise<void> {
  log(`3. watch-mode latency: ${cfg.latencyRate}/s for ${cfg.latencySeconds} s`)
  for (const debounceMs of quick ? [20] : [20, 0]) {
    const res = await measure(`latency debounce ${debounceMs}`, () =>
      watchLatency({
        rate: cfg.latencyRate,
        seconds: cfg.latencySeconds,
        tickMs: 10,
        keys: cfg.keys,
        debounceMs,
      }),
    )
    log(
      `  → debounce ${debounceMs} ms: commit→ack p50 ${res.ack.p50.toFixed(1)} / p95 ${res.ack.p95.toFixed(1)} / p99 ${res.ack.p99.toFixed(1)} ms`,
    )
    r.latency.push(res)
  }
}

/** Part 4: the relay's peak RSS over a large backlog. */
async function measureRss(r: Results): Promise<void> {
  log(`4. relay peak RSS over ${cfg.rssRows.toLocaleString('en')} rows`)
  r.rss = await measure('rss', () => relayRss({ rows: cfg.rssRows, keys: cfg.keys, batchSize: cfg.batch }))
}

/** Part 5: bulk writes, at each of `--bulk-rows`. */
async function measureBulk(r: Results): Promise<void> {
  r.bulk = []
  for (const rows of cfg.bulkRows) {
    log(`5. bulk writes: createMany/updateMany/deleteMany of ${rows.toLocaleString('en')} rows`)
    const res = await measure(`bulk ${rows}`, () => bulkWrites({ rows, rounds: quick ? 1 : 3 }))
    for (const [op, m] of Object.entries(res.ms)) {
      log(`  → ${op}: extension ${m.extension.toFixed(0)} ms, plain ${m.plain.toFixed(0)} ms`)
    }
    r.bulk.push(res)
  }
}

/** Part 7: writers alone, watch, stream and Debezium side by side. */
async function measureSideBySide(r: Results): Promise<void> {
  log(`7. side by side: writers alone, watch, stream, Debezium (${cfg.sideSeconds} s per run)`)
  // Not wrapped in measure(): its own relay processes would count as other work.
  if (!(await waitForQuietMachine())) disturbed.push('side by side')
  r.sideBySide = await sideBySide({
    seconds: cfg.sideSeconds,
    repeat: cfg.repeat,
    modes: cfg.sideModes,
    shapes: cfg.sideShapes,
  })
}

/** Part 8: the Kafka clients compared (`--only=publishers`). */
async function measurePublishers(r: Results): Promise<void> {
  log(
    `8. Kafka clients: drain of ${cfg.publisherRows.toLocaleString('en')} rows and bare publish, interleaved, ${cfg.repeat} round(s)`,
  )
  r.publishers = await comparePublishers({
    rows: cfg.publisherRows,
    keys: cfg.keys,
    batchSize: cfg.batch,
    repeat: cfg.repeat,
    measure,
  })
}

/** Writes the raw results (`.json`, biome-formatted) and the rendered `.md`, and prints the latter. */
function save(saved: Saved): void {
  const json = out.replace(/\.md$/, '.json')
  writeFileSync(json, `${JSON.stringify(saved, null, 2)}\n`)
  try {
    // Keep `npm run lint` (biome check .) clean: format the raw data the way biome wants it.
    execFileSync(`${ROOT}node_modules/.bin/biome`, ['format', '--write', json], { stdio: 'ignore' })
  } catch {
    // formatting is cosmetic
  }
  const md = render(saved)
  writeFileSync(out, md)
  process.stdout.write(md)
  log(`done in ${saved.totalS.toFixed(0)} s; wrote ${out} and its .json`)
}

/** The parts in the order they run, each under its `--only` name. */
const PARTS: [string, (r: Results) => Promise<void>][] = [
  ['drain', measureDrain],
  ['write', measureWrite],
  ['tracing', measureTracing],
  ['latency', measureLatency],
  ['rss', measureRss],
  ['bulk', measureBulk],
  ['sidebyside', measureSideBySide],
  ['publishers', measurePublishers],
]

async function main() {
  const wall = performance.now()
  const startedAt = new Date()
  log(
    `prisma-outbox bench (${quick ? 'quick' : 'full'}): ${JSON.stringify(cfg)}; parts: ${[...parts].join(', ')}`,
  )
  const probe = await freshDatabase()
  const machine = await machineInfo(probe)
  await probe.drop()

  const r: Results = { relay: [], sweep: [], latency: [], ceilingSweep: [] }
  for (const [name, run] of PARTS) if (parts.has(name)) await run(r)

  save({
    cfg,
    quick,
    results: r,
    machine,
    startedAt: startedAt.toISOString(),
    totalS: (performance.now() - wall) / 1000,
    disturbed,
    relayBuild: relayBuildHash(),
  })
}

interface Saved {
  cfg: typeof cfg
  quick: boolean
  results: Results
  machine: Awaited<ReturnType<typeof machineInfo>>
  startedAt: string
  totalS: number
  disturbed: string[]
  relayBuild: string
}

/** A short hash of the relay's built JavaScript: which relay build was measured. */
function relayBuildHash(): string {
  const hash = createHash('sha256')
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const path = `${dir}/${entry.name}`
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.js')) hash.update(entry.name).update(readFileSync(path))
    }
  }
  try {
    walk(`${ROOT}packages/relay/dist`)
    return hash.digest('hex').slice(0, 12)
  } catch {
    return '?'
  }
}

const cpuCount = cpus().length
/** A relay run's label: its variant (or relay count) and batch size, once. */
const labelOf = (x: RelayDrainResult) => {
  const v = x.variant ?? `relay ×${x.relays}`
  return v.includes('batch ') ? v : `${v}, batch ${x.batchSize}`
}
const f0 = (n: number) => Math.round(n).toLocaleString('en')
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–')
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–')
const pct = (n: number) => `${Math.round(n * 100)}%`

function verdict(ok: boolean, how: string): string {
  return ok ? `met (${how})` : `**missed** (${how})`
}

/** Title, machine and what was measured. */
function renderHeader(saved: Saved, L: string[]): void {
  const ctx = { ...saved, startedAt: new Date(saved.startedAt) }
  const { cfg, quick } = saved
  const m = ctx.machine
  L.push(`# Benchmark results${quick ? ' (quick run)' : ''}`)
  L.push('')
  L.push(
    `Generated by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${ctx.startedAt.toISOString()} in ${f0(ctx.totalS)} s. ` +
      `Numbers are measured, not asserted. The ceiling and the main relay runs are the median of ${cfg.repeat} run(s), everything else is one run; on this shared development VM identical runs differ by tens of percent (see the analysis at the end).`,
  )
  L.push('')
  L.push('| machine / version | |')
  L.push('|---|---|')
  L.push(`| CPU | ${m.cpu} |`)
  L.push(`| memory | ${m.memory} |`)
  L.push(`| disk (as the VM reports it) | ${m.disk} |`)
  L.push(`| Node.js | ${m.node} |`)
  L.push(`| PostgreSQL | ${m.postgres} |`)
  L.push(`| Kafka | ${m.kafka} |`)
  L.push(`| kafkajs / pg | ${m.kafkajs} / ${m.pg} |`)
  L.push(`| @prisma/client / adapter-pg / prisma CLI | ${m.prismaClient} / ${m.adapterPg} / ${m.prismaCli} |`)
  L.push(`| sizes | ${JSON.stringify(cfg)} |`)
  L.push('')
  L.push(
    'PostgreSQL, Kafka and the benchmark all share the same cores: every number includes the broker and the database competing with the relay for CPU.',
  )
  L.push(
    `Relay measured: the working tree's build of \`@prisma-outbox/relay\` (sha256 of packages/relay/dist/**/*.js: \`${saved.relayBuild}\`).`,
  )
  if (ctx.disturbed.length > 0)
    L.push(
      `\n> **Disturbed:** other test runs overlapped these measurements even after repeating them: ${ctx.disturbed.join(', ')}. Treat those numbers with care.`,
    )
  else
    L.push(
      '\nEvery measurement ran while no other test run, install, tsx script, relay process or second broker was active (`pgrep`); one that overlapped such work was repeated.',
    )
  L.push('')
}

/** The targets table. */
function renderTargets(saved: Saved, L: string[]): void {
  const r = saved.results
  // ---- summary
  L.push('## Targets')
  L.push('')
  L.push('| target | measured | verdict |')
  L.push('|---|---|---|')
  const one = r.relay.find((x) => x.relays === 1)
  const many = r.relay.find((x) => x.relays > 1)
  const best = r.relay.reduce<RelayDrainResult | undefined>(
    (a, b) => (!a || b.eventsPerSec > a.eventsPerSec ? b : a),
    undefined,
  )
  if (best && r.ceiling && r.naive) {
    const eps = best.eventsPerSec
    L.push(
      `| drain ≥ ${f0(TARGETS.drainEventsPerSec)} events/s | ${f0(eps)} events/s (relay ×${best.relays}) | ${verdict(eps >= TARGETS.drainEventsPerSec, eps >= TARGETS.drainEventsPerSec ? `${f2(eps / TARGETS.drainEventsPerSec)}×` : `${pct(1 - eps / TARGETS.drainEventsPerSec)} short`)} |`,
    )
    const vc = eps / r.ceiling.eventsPerSec
    L.push(
      `| drain ≥ ${TARGETS.drainVsCeiling} × bare sendBatch | ${f2(vc)} × (${f0(r.ceiling.eventsPerSec)} events/s ceiling) | ${verdict(vc >= TARGETS.drainVsCeiling, vc >= TARGETS.drainVsCeiling ? 'ok' : `${pct(1 - vc / TARGETS.drainVsCeiling)} short`)} |`,
    )
    const vn = eps / r.naive.eventsPerSec
    L.push(
      `| drain ≥ ${TARGETS.drainVsNaive} × naive loop | ${f0(vn)} × (naive ${f0(r.naive.eventsPerSec)} events/s) | ${verdict(vn >= TARGETS.drainVsNaive, vn >= TARGETS.drainVsNaive ? 'ok' : `${pct(1 - vn / TARGETS.drainVsNaive)} short`)} |`,
    )
    if (one && many && one !== best)
      L.push(
        `| (relay ×1 for comparison) | ${f0(one.eventsPerSec)} events/s, ${f2(one.eventsPerSec / r.ceiling.eventsPerSec)} × ceiling | |`,
      )
    if (many && one && many !== best)
      L.push(
        `| (relay ×${many.relays} for comparison) | ${f0(many.eventsPerSec)} events/s, ${f2(many.eventsPerSec / r.ceiling.eventsPerSec)} × ceiling | |`,
      )
  }
  if (r.write) {
    const ratio = r.write.us.standalone.extension / r.write.us.standalone.handwritten
    L.push(
      `| extension standalone write ≤ ${TARGETS.writeVsHandwritten} × hand-written \`$transaction\` | ${f2(ratio)} × (${f0(r.write.us.standalone.extension)} vs ${f0(r.write.us.standalone.handwritten)} µs) | ${verdict(ratio <= TARGETS.writeVsHandwritten, ratio <= TARGETS.writeVsHandwritten ? 'ok' : `${pct(ratio / TARGETS.writeVsHandwritten - 1)} over`)} |`,
    )
  }
  const bulk10k = r.bulk?.find((b) => b.rows === 10_000)
  if (bulk10k) {
    const worst = Math.max(...Object.values(bulk10k.ms).map((m) => m.extension / m.plain))
    const ok = worst <= TARGETS.bulkVsPlain10k
    L.push(
      `| bulk write of 10k rows ≤ ${TARGETS.bulkVsPlain10k} × plain Prisma (worst of createMany/updateMany/deleteMany) | ${f2(worst)} × | ${verdict(ok, ok ? 'ok' : `${pct(worst / TARGETS.bulkVsPlain10k - 1)} over`)} |`,
    )
  }
  const lat = r.latency[0]
  if (lat) {
    const ok = lat.ack.p99 <= TARGETS.watchP99Ms
    L.push(
      `| watch-mode p99 ≤ ${TARGETS.watchP99Ms} ms at 1k events/s | p99 commit→ack ${f1(lat.ack.p99)} ms at ${f0(lat.rate)}/s (debounce ${lat.debounceMs} ms) | ${verdict(ok, ok ? 'ok' : `${pct(lat.ack.p99 / TARGETS.watchP99Ms - 1)} over`)}${lat.rate !== 1000 ? ', not at the target rate' : ''} |`,
    )
  }
  if (r.rss) {
    const ok = r.rss.peakRssMB < TARGETS.rssMB
    L.push(
      `| relay RSS < ${TARGETS.rssMB} MB over 1M rows | ${f0(r.rss.peakRssMB)} MB peak over ${f0(r.rss.rows)} rows | ${verdict(ok, ok ? 'ok' : `${pct(r.rss.peakRssMB / TARGETS.rssMB - 1)} over`)}${r.rss.rows < 1_000_000 ? ', fewer rows than the target' : ''} |`,
    )
  }
  L.push('')
}

/** Section 1: the drain runs and where their time goes. */
function renderDrainRuns(saved: Saved, L: string[]): void {
  const r = saved.results
  if (r.relay.length === 0 && !r.ceiling && !r.naive) return
  const { cfg } = saved
  const one = r.relay.find((x) => x.relays === 1)
  L.push('## 1. Drain throughput')
  L.push('')
  L.push(
    `Backlog: ${f0(cfg.rows)} pending rows over ${f0(cfg.keys)} keys (row g → key g mod ${f0(cfg.keys)}), payload ≈ ${one?.fill.avgPayloadBytes ?? '?'} bytes of JSON, ` +
      `one fresh database and one fresh 3-partition topic per measurement, filled with \`INSERT … SELECT generate_series\` and \`VACUUM ANALYZE\`d before timing. ` +
      `Producers: idempotent, \`maxInFlightRequests: 1\`, acks = all (-1), no compression. Time = first claim to last mark; every run checks that no row is left unpublished and counts the messages in the topic. The ceiling and the relay runs are repeated ${cfg.repeat} time(s) (fresh database and topic each); the median run is shown.`,
  )
  L.push('')
  L.push(
    '| variant | rows | time (s) | events/s | × ceiling | × naive | messages in topic | events/s of each run |',
  )
  L.push('|---|---:|---:|---:|---:|---:|---:|---|')
  const runsOf = (x: { repeats?: number[] }) => (x.repeats ? x.repeats.map(f0).join(', ') : '1 run')
  const c = r.ceiling?.eventsPerSec ?? Number.NaN
  const n = r.naive?.eventsPerSec ?? Number.NaN
  if (r.ceiling)
    L.push(
      `| bare kafkajs \`sendBatch\`, ${r.ceiling.batchSize} per call, no database (ceiling) | ${f0(r.ceiling.rows)} | ${f1(r.ceiling.ms / 1000)} | ${f0(c)} | 1.00 | ${f0(c / n)} | ${f0(r.ceiling.inKafka)} | ${runsOf(r.ceiling)} |`,
    )
  for (const x of r.relay)
    L.push(
      `| ${x.variant ?? `relay, ${x.relays} concurrent drain${x.relays > 1 ? 's (one engine + producer each, one pg pool)' : ''}`}, batch ${x.batchSize} | ${f0(x.rows)} | ${f1(x.ms / 1000)} | ${f0(x.eventsPerSec)} | ${f2(x.eventsPerSec / c)} | ${f0(x.eventsPerSec / n)} | ${f0(x.inKafka)} | ${runsOf(x)} |`,
    )
  if (r.naive)
    L.push(
      `| naive loop (Prisma \`findMany\` take 10 → \`send\` one → \`update\` one), **on ${f0(r.naive.rows)} rows only** | ${f0(r.naive.rows)} | ${f1(r.naive.ms / 1000)} | ${f0(n)} | ${f2(n / c)} | 1 | ${f0(r.naive.inKafka)} | 1 run |`,
    )
  L.push('')
  L.push('### Where the time goes (engine `onBatch` hook)')
  L.push('')
  L.push(
    'claim = `BEGIN` + advisory lock + claim `UPDATE … RETURNING` + `COMMIT` (4 round trips); publish = one `sendBatch` (acks = all); mark = one `UPDATE … WHERE id = ANY($1)`. ' +
      'Per relay, so with several relays the phases overlap.',
  )
  L.push('')
  L.push(
    '| variant | batches | rows/batch | claim ms mean / p95 | publish ms mean / p95 | mark ms mean / p95 | share claim / publish / mark | claim ms first → last tenth |',
  )
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const x of [...r.relay, ...r.sweep]) {
    const p = x.profile
    L.push(
      `| ${labelOf(x)}, ${f0(x.rows)} rows | ${p.batches} | ${f0(p.avgSize)} | ${f1(p.claimMs.mean)} / ${f1(p.claimMs.p95)} | ${f1(p.publishMs.mean)} / ${f1(p.publishMs.p95)} | ${f1(p.markMs.mean)} / ${f1(p.markMs.p95)} | ${pct(p.share.claim)} / ${pct(p.share.publish)} / ${pct(p.share.mark)} | ${f1(p.claimFirstTenthMs)} → ${f1(p.claimLastTenthMs)} |`,
    )
  }
  L.push('')
}

/** Section 1: CPU by component. */
function renderDrainCpu(saved: Saved, L: string[]): void {
  const r = saved.results
  if (r.relay.length === 0 && !r.ceiling && !r.naive) return
  L.push('### CPU by component during the timed part (/proc/<pid>/stat)')
  L.push('')
  L.push(
    `CPU seconds used while draining, per 100k events, by this Node process (relay + benchmark), all postgres processes and the Kafka broker JVM; utilisation = total CPU / (wall time × ${cpuCount} cores).`,
  )
  L.push('')
  L.push('| variant | node s/100k | postgres s/100k | kafka s/100k | total s/100k | CPU utilisation |')
  L.push('|---|---:|---:|---:|---:|---:|')
  const cpuRow = (label: string, rows: number, c: CpuSplit) => {
    const k = 100_000 / rows
    const total = c.node + c.postgres + c.kafka
    L.push(
      `| ${label} | ${f2(c.node * k)} | ${f2(c.postgres * k)} | ${f2(c.kafka * k)} | ${f2(total * k)} | ${pct(total / (c.wallS * cpuCount))} |`,
    )
  }
  if (r.ceiling) cpuRow('bare sendBatch (ceiling)', r.ceiling.rows, r.ceiling.cpu)
  for (const x of [...r.relay, ...r.sweep]) cpuRow(`${labelOf(x)}, ${f0(x.rows)} rows`, x.rows, x.cpu)
  if (r.naive) cpuRow('naive loop', r.naive.rows, r.naive.cpu)
  L.push('')
}

/** Section 1: CPU profile, tuning runs and the claim plan. */
function renderDrainDetails(saved: Saved, L: string[]): void {
  const r = saved.results
  if (r.relay.length === 0 && !r.ceiling && !r.naive) return
  const { cfg } = saved
  const pr = r.profile
  if (pr) {
    L.push(`### CPU profile of the relay process (node --cpu-prof, ${f0(pr.rows)} rows, batch ${cfg.batch})`)
    L.push('')
    L.push(
      `Self time of the relay process only (not postgres, not the broker): ${f0(pr.totalMs)} ms of CPU for ${f0(pr.rows)} events = ${f2((pr.totalMs / pr.rows) * 1000)} µs per event (idle excluded).`,
    )
    L.push('')
    L.push('| package | self ms | share |')
    L.push('|---|---:|---:|')
    for (const e of pr.byPackage) L.push(`| ${e.name} | ${f0(e.selfMs)} | ${pct(e.share)} |`)
    L.push('')
    L.push('| function (top 15 by self time) | self ms | share |')
    L.push('|---|---:|---:|')
    for (const e of pr.byFunction)
      L.push(`| \`${e.name.replaceAll('|', '\\|')}\` | ${f0(e.selfMs)} | ${pct(e.share)} |`)
    L.push('')
  }
  if (r.sweep.length > 0) {
    L.push('### Tuning runs')
    L.push('')
    L.push('| variant | rows | events/s | bare sendBatch at the same batch size | × that ceiling |')
    L.push('|---|---:|---:|---:|---:|')
    for (const x of r.sweep) {
      const cs = r.ceilingSweep.find((c) => c.batchSize === x.batchSize && !x.variant)
      L.push(
        `| ${x.variant ? labelOf(x) : `batch ${x.batchSize}`} | ${f0(x.rows)} | ${f0(x.eventsPerSec)} | ${cs ? f0(cs.eventsPerSec) : '–'} | ${cs ? f2(x.eventsPerSec / cs.eventsPerSec) : '–'} |`,
      )
    }
    L.push('')
  }
  const ex = r.relay.find((x) => x.explain)?.explain
  if (ex) {
    L.push(
      '<details><summary>Claim statement plan on the full backlog (EXPLAIN ANALYZE, BUFFERS; rolled back)</summary>',
    )
    L.push('')
    L.push('```')
    L.push(ex)
    L.push('```')
    L.push('</details>')
    L.push('')
  }
}

/** Section 2: write overhead. */
function renderWrite(saved: Saved, L: string[]): void {
  const r = saved.results
  const m = saved.machine
  // ---- 2
  if (r.write) {
    const w = r.write
    L.push('## 2. Write overhead')
    L.push('')
    L.push(
      `${f0(w.writes)} creates of the annotated model \`Item\` per variant and mode (${w.rounds} rounds, variant order rotated each round, after a warm-up), one at a time, Prisma ${m.prismaClient} with \`@prisma/adapter-pg\`. ` +
        'extension = `prisma.item.create` on the extended client; hand-written = `$transaction(async (tx) => { tx.item.create; tx.outboxEvent.create })`; plain = `item.create`, no event. ' +
        '"in a transaction" = each write inside the caller\'s own interactive `$transaction` (for hand-written, the same code: it already is one).',
    )
    L.push('')
    L.push(
      '| mode | extension µs | hand-written µs | plain µs | extension / hand-written | extension / plain | hand-written / plain | rounds (extension µs) |',
    )
    L.push('|---|---:|---:|---:|---:|---:|---:|---|')
    for (const mode of ['standalone', 'in-transaction'] as const) {
      const u = w.us[mode]
      L.push(
        `| ${mode === 'standalone' ? 'standalone' : "in a caller's `$transaction`"} | ${f0(u.extension)} | ${f0(u.handwritten)} | ${f0(u.plain)} | ${f2(u.extension / u.handwritten)} | ${f2(u.extension / u.plain)} | ${f2(u.handwritten / u.plain)} | ${w.rounds_us[mode].extension.map(f0).join(', ')} |`,
      )
    }
    L.push('')
    L.push(`Outbox rows written: ${f0(w.outboxRows)} (warm-up included).`)
    L.push('')
  }
}

/** Section 2c: tracing overhead. */
function renderTracing(saved: Saved, L: string[]): void {
  const r = saved.results
  // ---- 6 (rendered after the write overhead it extends)
  if (r.tracing) {
    const t = r.tracing
    L.push('## 2c. Tracing overhead on writes')
    L.push('')
    L.push(
      `${f0(t.writes)} standalone creates of \`Item\` per variant (${t.rounds} rounds, order rotated, after a warm-up), with the OpenTelemetry SDK registered (in-memory exporter). ` +
        'untraced = `outbox()`; no span = `outbox({ headers: traceHeaders })` outside any span (no trace headers to write); in a span = the same inside an active span, so each row carries its `traceparent` ' +
        '(the write then runs `set_config` in a transaction of its own first, as with any `headers` option).',
    )
    L.push('')
    L.push(
      '| untraced µs | traceHeaders, no span µs | traceHeaders, in a span µs | in a span / untraced | rows with a traceparent |',
    )
    L.push('|---:|---:|---:|---:|---:|')
    L.push(
      `| ${f0(t.us.untraced)} | ${f0(t.us.noSpan)} | ${f0(t.us.activeSpan)} | ${f2(t.us.activeSpan / t.us.untraced)} | ${f0(t.tracedRows)} |`,
    )
    L.push('')
  }

  if (r.relayTracing) {
    const t = r.relayTracing
    L.push('## 2d. Tracing cost in the relay')
    L.push('')
    L.push(
      `One engine drains ${f0(t.rows)} rows (batch ${t.batchSize}), each with a writer's \`traceparent\`, per round and variant (${t.rounds} rounds, order alternated, a fresh backlog each). ` +
        'untraced = the plain `KafkaPublisher`; traced = `tracedPublisher` + `tracingHooks` with the SDK registered (in-memory exporter): a create span and a new `traceparent` per message, a send span per publish, a batch span per batch.',
    )
    L.push('')
    L.push(
      '| untraced events/s | traced events/s | traced / untraced | rounds untraced | rounds traced | spans ended |',
    )
    L.push('|---:|---:|---:|---|---|---:|')
    L.push(
      `| ${f0(t.eventsPerSec.untraced)} | ${f0(t.eventsPerSec.traced)} | ${f2(t.eventsPerSec.traced / t.eventsPerSec.untraced)} | ${t.rounds_eps.untraced.map(f0).join(', ')} | ${t.rounds_eps.traced.map(f0).join(', ')} | ${f0(t.spans)} |`,
    )
    L.push('')
  }
}

/** Section 2b: bulk writes. */
function renderBulk(saved: Saved, L: string[]): void {
  const r = saved.results
  // ---- 5 (rendered after the write overhead it extends)
  if (r.bulk && r.bulk.length > 0) {
    L.push('## 2b. Bulk writes')
    L.push('')
    L.push(
      'Standalone `createMany` (one call with all rows), `updateMany` (all rows, `quantity: { increment: 1 }`) and `deleteMany` (all rows), in that order. ' +
        'extension = the extended client on the captured model `Item` (the capture triggers write one outbox row per row); plain = the plain client on `PlainItem`, the same columns with no capture. ' +
        'Fresh database per row count, outbox emptied and tables vacuumed before each variant; the median of the rounds is shown.',
    )
    L.push('')
    L.push(
      '| rows | operation | extension ms | plain ms | extension / plain | rounds (extension ms / plain ms) |',
    )
    L.push('|---:|---|---:|---:|---:|---|')
    for (const b of r.bulk) {
      for (const [op, m] of Object.entries(b.ms)) {
        const rounds = b.rounds_ms[op as keyof typeof b.rounds_ms]
        L.push(
          `| ${f0(b.rows)} | ${op} | ${f0(m.extension)} | ${f0(m.plain)} | ${f2(m.extension / m.plain)} | ${rounds.extension.map(f0).join(', ')} / ${rounds.plain.map(f0).join(', ')} |`,
        )
      }
    }
    L.push('')
  }
}

/** Section 3: watch-mode latency. */
function renderLatency(saved: Saved, L: string[]): void {
  const r = saved.results
  // ---- 3
  if (r.latency.length > 0) {
    L.push('## 3. Latency in watch mode')
    L.push('')
    const l0 = r.latency[0] as LatencyResult
    L.push(
      `A writer commits ${l0.rowsPerTx} rows every 10 ms (${f0(l0.rate)} events/s, one \`INSERT\` transaction each, on its own pool) for ${l0.seconds} s; the relay runs \`createWatcher\` ` +
        "(LISTEN/NOTIFY, pollMs 1000) in the same process. **commit→ack** = from the writer's COMMIT returning to the relay's `sendBatch` (acks = all) resolving, taken by wrapping the KafkaPublisher: this is the target metric. " +
        '**commit→consume** = to a kafkajs consumer (maxWaitTimeInMs 100) receiving it: end to end, an upper bound of commit→ack.',
    )
    L.push('')
    L.push(
      '| debounceMs | events (written / acked / consumed) | achieved rate | drains | commit→ack p50 / p95 / p99 / max ms | commit→consume p50 / p95 / p99 / max ms |',
    )
    L.push('|---:|---|---:|---:|---|---|')
    for (const x of r.latency)
      L.push(
        `| ${x.debounceMs}${x.debounceMs === 20 ? ' (default)' : ''} | ${f0(x.written)} / ${f0(x.acked)} / ${f0(x.consumed)} | ${f0(x.achievedRate)}/s | ${f0(x.drains)} | ${f1(x.ack.p50)} / ${f1(x.ack.p95)} / ${f1(x.ack.p99)} / ${f1(x.ack.max)} | ${f1(x.consume.p50)} / ${f1(x.consume.p95)} / ${f1(x.consume.p99)} / ${f1(x.consume.max)} |`,
      )
    L.push('')
  }
}

/** Section 4: peak memory. */
function renderRss(saved: Saved, L: string[]): void {
  const r = saved.results
  // ---- 4
  if (r.rss) {
    const x = r.rss
    L.push('## 4. Peak memory of the relay')
    L.push('')
    L.push(
      `A separate relay process (\`node bench/rss-child.mjs\`: the built \`@prisma-outbox/relay\`, pg pool of 4, one KafkaPublisher, batch ${x.batchSize}) drains ${f0(x.rows)} rows. ` +
        "Peak = the kernel's VmHWM of that process at the end; the parent also sampled VmRSS every 100 ms.",
    )
    L.push('')
    L.push(
      '| rows | drain time (s) | events/s | RSS after start | peak RSS (VmHWM) | sampled peak | RSS / V8 heap used during the drain |',
    )
    L.push('|---:|---:|---:|---:|---:|---:|---|')
    const tl = x.timeline.map((t) => `${pct(t.at)}: ${f0(t.rssMB)} / ${f0(t.heapMB)} MB`).join('; ')
    L.push(
      `| ${f0(x.rows)} | ${f1(x.ms / 1000)} | ${f0(x.eventsPerSec)} | ${f0(x.readyRssMB)} MB | ${f0(x.peakRssMB)} MB | ${f0(x.sampledPeakRssMB)} MB | ${tl} |`,
    )
    L.push('')
  }
}

function render(saved: Saved): string {
  const L: string[] = []
  for (const section of [
    renderHeader,
    renderTargets,
    renderDrainRuns,
    renderDrainCpu,
    renderDrainDetails,
    renderWrite,
    renderTracing,
    renderBulk,
    renderLatency,
    renderRss,
  ])
    section(saved, L)
  if (saved.results.sideBySide) L.push(...renderSideBySide(saved.results.sideBySide))
  if (saved.results.publishers) L.push(...renderPublishers(saved.results.publishers))
  const notes = `${ROOT}bench/NOTES.md`
  if (existsSync(notes)) {
    L.push(readFileSync(notes, 'utf8').trim())
    L.push('')
  }
  return `${L.join('\n')}\n`
}

/** Section 8: the Kafka clients side by side (`--only=publishers`). */
function renderPublishers(p: PublishersResult): string[] {
  const L = ['## 8. Kafka clients', '']
  L.push(
    `Each client publishes the same ${f0(p.rows)} messages (batch ${p.batchSize}) twice: a backlog drain by the relay's engine (one relay) and a bare \`publish\` of the messages built in memory (no database, the ceiling). ` +
      'The clients run interleaved, round after round, so drift of the shared machine hits them alike; the median round is shown with every round. ' +
      'CPU = this process only (user + system, every thread: librdkafka included), per event.',
  )
  L.push('')
  L.push(
    '| client | drain events/s | drain CPU µs/event | ceiling events/s | ceiling CPU µs/event | drain / kafkajs drain | rounds (drain events/s) |',
  )
  L.push('|---|---:|---:|---:|---:|---:|---|')
  const base = medianRun(p, 'kafkajs', 'drain')
  for (const client of ['kafkajs', 'platformatic', 'confluent'] as const) {
    const d = medianRun(p, client, 'drain')
    const c = medianRun(p, client, 'ceiling')
    if (!d || !c) {
      L.push(`| ${client} | skipped: ${p.skipped[client] ?? 'not run'} | | | | | |`)
      continue
    }
    L.push(
      `| ${client} | ${f0(d.eventsPerSec)} | ${f1(d.cpuUsPerEvent)} | ${f0(c.eventsPerSec)} | ${f1(c.cpuUsPerEvent)} | ${base ? f2(d.eventsPerSec / base.eventsPerSec) : '–'} | ${d.all.map((x) => f0(x.eventsPerSec)).join(', ')} |`,
    )
  }
  L.push('')
  return L
}

if (args.render) {
  // Re-render a saved run (e.g. after editing bench/NOTES.md) without measuring again.
  const saved = JSON.parse(readFileSync(args.render, 'utf8')) as Saved
  const target = args.out ?? args.render.replace(/\.json$/, '.md')
  writeFileSync(target, render(saved))
  log(`rendered ${args.render} → ${target}`)
} else
  main().catch((error) => {
    log(`bench failed: ${error?.stack ?? error}`)
    process.exit(1)
  })
