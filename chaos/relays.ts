/**
 * Real relay processes (`outbox-relay watch`, or `outbox-relay stream` with `--relay stream`; the
 * package's bin) under a supervisor that SIGKILLs a random one every ~2 s and starts it again,
 * recording what each killed incarnation had in flight (rows still leased by it right after its
 * death; unknown for streamers, which lease nothing).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import type pg from 'pg'
import { log, ROOT, retry, sleep } from './util.ts'

export interface RelayConfig {
  /** `watch` (polling relays) or `stream` (WAL streamers on one slot: one active, the others standby). */
  mode: 'watch' | 'stream'
  count: number
  databaseUrl: string
  brokers: string
  leaseMs: number
  batchSize: number
  pollMs: number
  maxAttempts: number
  /** Mark the rows they published, or delete them (`RELAY_PUBLISHED_ROWS`, `STREAM_PUBLISHED_ROWS`). */
  publishedRows: 'mark' | 'delete'
  logDir: string
}

export interface Kill {
  at: number
  relayId: string
  /** SIGKILL by us, a relay that died on its own (crash), or one we froze past its lease (SIGSTOP). */
  cause: 'SIGKILL' | 'crash' | 'SIGSTOP'
  /** Rows leased by the killed relay when it died (its in-flight batch), null if unknown. */
  inFlight: string[] | null
}

export interface UnexpectedExit {
  relayId: string
  code: number | null
  signal: string | null
  /** 'startup': could not connect at start (database or broker down); 'crash': died while running. */
  kind: 'startup' | 'crash'
  lastLine: string
  /** The error of a crash (first line of the stack trace). */
  error: string
}

interface Slot {
  index: number
  incarnation: number
  relayId: string
  child?: ChildProcess | undefined
  exited?: Promise<void>
  killing: boolean
}

export interface RelayFleet {
  kills: Kill[]
  /** Exits we did not cause (e.g. a relay that could not start while the broker was down). */
  unexpectedExits: UnexpectedExit[]
  spawned: number
  /** SIGKILLs a random relay and restarts it; returns the kill record. */
  killOne(): Promise<Kill | undefined>
  /** The live process of relay `relayId` (the current incarnation of its slot). */
  processOf(relayId: string): ChildProcess | undefined
  /** A streamer's stats endpoint (`…/stats`, `…/metrics` below it), once it logged it. */
  statsUrlOf(relayId: string): string | undefined
  /**
   * Records a relay frozen while it held leased rows: once its lease expires it is a crashed relay
   * as far as those rows go (they may repeat).
   */
  recordFreeze(relayId: string, inFlight: string[]): void
  /** SIGTERM to all (graceful stop), SIGKILL after 15 s. */
  stop(): Promise<void>
}

const BIN = join(ROOT, 'packages/relay/bin/outbox-relay.mjs')

/** The replication slot (and publication) of the stream relays. */
export const STREAM_SLOT = 'chaos'

/** Every relay process started, so a crashing harness can still kill them (see run.ts). */
export const children = new Set<ChildProcess>()

export function startRelays(cfg: RelayConfig, pool: pg.Pool): RelayFleet {
  const fleet = new Supervisor(cfg, pool)
  fleet.start()
  return fleet
}

/** The environment of a relay process: its mode's settings, id and the run's timings. */
function relayEnv(cfg: RelayConfig, slot: Slot): NodeJS.ProcessEnv {
  return {
    ...(cfg.mode === 'stream'
      ? {
          STREAM_SLOT: STREAM_SLOT,
          STREAM_BATCH_SIZE: String(cfg.batchSize),
          STREAM_STANDBY_RETRY_MS: '200',
          STREAM_PUBLISHED_ROWS: cfg.publishedRows,
          // a free port of its own: the stream faults read its role and last publish
          STREAM_HTTP_PORT: '0',
        }
      : { RELAY_PUBLISHED_ROWS: cfg.publishedRows }),
    PATH: process.env.PATH,
    DATABASE_URL: cfg.databaseUrl,
    KAFKA_BROKERS: cfg.brokers,
    KAFKA_CLIENT_ID: `chaos-relay-${slot.index}`,
    // The Kafka client under test (kafkajs unless set): `RELAY_KAFKA_CLIENT=platformatic npm run chaos`.
    ...(process.env.RELAY_KAFKA_CLIENT ? { RELAY_KAFKA_CLIENT: process.env.RELAY_KAFKA_CLIENT } : {}),
    RELAY_ID: slot.relayId,
    DRAIN_LEASE_MS: String(cfg.leaseMs),
    DRAIN_BATCH_SIZE: String(cfg.batchSize),
    DRAIN_MAX_ATTEMPTS: String(cfg.maxAttempts),
    WATCH_POLL_MS: String(cfg.pollMs),
  }
}

/** The last lines a relay process printed. */
class OutputTail {
  lastLine = ''
  lines: string[] = []

  add(text: string): void {
    const lines = text.trim().split('\n')
    this.lastLine = lines[lines.length - 1] ?? this.lastLine
    this.lines = [...this.lines, ...lines].slice(-40)
  }

  /** Whether the relay failed to start (`<mode> failed:`), and the error to report. */
  diagnose(mode: RelayConfig['mode']): { startup: boolean; error: string } {
    const startup = this.lines.some((l) => l.includes(`${mode} failed:`))
    const error = startup
      ? this.lastLine
      : (this.lines.find((l) => /^\w*Error\b|^error:/.test(l.trim())) ?? this.lastLine).trim()
    return { startup, error }
  }
}

/** Runs the relay processes of a {@link RelayFleet}: one slot each, restarted after a kill or crash. */
class Supervisor implements RelayFleet {
  readonly kills: Kill[] = []
  readonly unexpectedExits: UnexpectedExit[] = []
  spawned = 0
  private readonly slots: Slot[]
  private stopping = false
  private readonly logs = new Map<number, WriteStream>()
  private readonly statsUrls = new Map<string, string>()

  constructor(
    private readonly cfg: RelayConfig,
    private readonly pool: pg.Pool,
  ) {
    this.slots = Array.from({ length: cfg.count }, (_, index) => ({
      index,
      incarnation: 0,
      relayId: '',
      killing: false,
    }))
  }

  /** Starts every slot's first relay. */
  start(): void {
    for (const slot of this.slots) this.spawnSlot(slot)
  }

  processOf(relayId: string): ChildProcess | undefined {
    return this.slots.find((s) => s.relayId === relayId && !s.killing)?.child
  }

  statsUrlOf(relayId: string): string | undefined {
    return this.statsUrls.get(relayId)
  }

  recordFreeze(relayId: string, inFlight: string[]): void {
    this.kills.push({ at: Date.now(), relayId, cause: 'SIGSTOP', inFlight })
  }

  /** Starts the slot's next incarnation, its output appended to the slot's log file. */
  private spawnSlot(slot: Slot): void {
    slot.incarnation++
    slot.relayId = `chaos-r${slot.index}-${slot.incarnation}`
    const sink = this.logOf(slot)
    const child = spawn(process.execPath, [BIN, this.cfg.mode], {
      env: relayEnv(this.cfg, slot),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.spawned++
    children.add(child)
    child.once('exit', () => children.delete(child))
    const id = slot.relayId
    const tail = this.captureOutput(id, child, sink)
    slot.child = child
    slot.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (!slot.killing && !this.stopping) this.onUnexpectedExit(slot, id, child, tail, code, signal)
        resolve()
      })
    })
  }

  /** The slot's log file (one per slot, appended to by each incarnation). */
  private logOf(slot: Slot): WriteStream {
    let out = this.logs.get(slot.index)
    if (!out) {
      out = createWriteStream(join(this.cfg.logDir, `relay-${slot.index}.log`), { flags: 'a' })
      this.logs.set(slot.index, out)
    }
    return out
  }

  /** Copies relay `id`'s output to `sink` (timestamped), noting a streamer's stats URL. */
  private captureOutput(id: string, child: ChildProcess, sink: WriteStream): OutputTail {
    const tail = new OutputTail()
    const onData = (chunk: Buffer) => {
      const text = chunk.toString()
      const url = /stream stats on (http:\/\/\S+)\/stats/.exec(text)?.[1]
      if (url) this.statsUrls.set(id, url)
      sink.write(text.replace(/^(?=.)/gm, `${new Date().toISOString()} ${id} `))
      tail.add(text)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    return tail
  }

  /** A relay that exited on its own: recorded (a crash as a kill), then restarted a second later. */
  private onUnexpectedExit(
    slot: Slot,
    id: string,
    child: ChildProcess,
    tail: OutputTail,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    const { startup, error } = tail.diagnose(this.cfg.mode)
    this.unexpectedExits.push({
      relayId: id,
      code,
      signal,
      kind: startup ? 'startup' : 'crash',
      lastLine: tail.lastLine,
      error,
    })
    log(
      `relay ${id} exited on its own (${startup ? 'startup failure' : 'CRASH'}, code ${code}): ${error.slice(0, 200)}`,
    )
    // a crashed relay's leased rows are in flight, as with a kill
    if (!startup)
      void this.captureInFlight(id).then((inFlight) =>
        this.kills.push({ at: Date.now(), relayId: id, cause: 'crash', inFlight }),
      )
    // a supervisor restarts it, as Kubernetes would
    setTimeout(() => {
      if (!this.stopping && slot.child === child) this.spawnSlot(slot)
    }, 1000)
  }

  /**
   * A dead relay's leases stay until they expire, so right after its death they name its in-flight
   * rows. (During a database restart this waits; after leaseMs another relay may have taken them,
   * and the answer is unknown: null.)
   */
  private async captureInFlight(relayId: string): Promise<string[] | null> {
    // A streamer leases nothing: what it had sent but not confirmed is unknown.
    if (this.cfg.mode === 'stream') return null
    const started = Date.now()
    try {
      const { rows } = await retry(
        () =>
          this.pool.query("SELECT id::text FROM outbox_event WHERE locked_by = $1 AND status = 'pending'", [
            relayId,
          ]),
        this.cfg.leaseMs,
      )
      return Date.now() - started < this.cfg.leaseMs ? rows.map((r: { id: string }) => r.id) : null
    } catch {
      return null
    }
  }

  async killOne(): Promise<Kill | undefined> {
    const slot = this.slots[Math.floor(Math.random() * this.slots.length)]
    if (!slot?.child || slot.child.exitCode !== null || slot.killing) return undefined
    slot.killing = true
    const relayId = slot.relayId
    slot.child.kill('SIGKILL')
    await slot.exited
    const kill: Kill = { at: Date.now(), relayId, cause: 'SIGKILL', inFlight: null }
    this.kills.push(kill)
    kill.inFlight = await this.captureInFlight(relayId)
    slot.killing = false
    if (!this.stopping) this.spawnSlot(slot)
    return kill
  }

  async stop(): Promise<void> {
    this.stopping = true
    const all = this.slots.map((s) => s.child).filter((c): c is ChildProcess => !!c && c.exitCode === null)
    for (const c of all) c.kill('SIGTERM')
    const deadline = Date.now() + 15_000
    while (all.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline)
      await sleep(100)
    for (const c of all) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await Promise.all(this.slots.map((s) => s.exited))
    for (const out of this.logs.values()) out.end()
  }
}
