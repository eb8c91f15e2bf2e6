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
  let stopping = false
  const kills: Kill[] = []
  const unexpectedExits: RelayFleet['unexpectedExits'] = []
  const logs = new Map<number, WriteStream>()
  const statsUrls = new Map<string, string>()
  const slots: Slot[] = Array.from({ length: cfg.count }, (_, index) => ({
    index,
    incarnation: 0,
    relayId: '',
    killing: false,
  }))
  const fleet: RelayFleet = {
    kills,
    unexpectedExits,
    spawned: 0,
    killOne,
    stop,
    processOf: (relayId) => slots.find((s) => s.relayId === relayId && !s.killing)?.child,
    statsUrlOf: (relayId) => statsUrls.get(relayId),
    recordFreeze: (relayId, inFlight) => {
      kills.push({ at: Date.now(), relayId, cause: 'SIGSTOP', inFlight })
    },
  }

  function spawnSlot(slot: Slot) {
    slot.incarnation++
    slot.relayId = `chaos-r${slot.index}-${slot.incarnation}`
    let out = logs.get(slot.index)
    if (!out) {
      out = createWriteStream(join(cfg.logDir, `relay-${slot.index}.log`), { flags: 'a' })
      logs.set(slot.index, out)
    }
    const child = spawn(process.execPath, [BIN, cfg.mode], {
      env: {
        ...(cfg.mode === 'stream'
          ? {
              STREAM_SLOT: STREAM_SLOT,
              STREAM_BATCH_SIZE: String(cfg.batchSize),
              STREAM_STANDBY_RETRY_MS: '200',
              // a free port of its own: the stream faults read its role and last publish
              STREAM_HTTP_PORT: '0',
            }
          : {}),
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
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    fleet.spawned++
    children.add(child)
    child.once('exit', () => children.delete(child))
    const id = slot.relayId
    let lastLine = ''
    let tail: string[] = []
    const sink = out
    const onData = (chunk: Buffer) => {
      const text = chunk.toString()
      const url = /stream stats on (http:\/\/\S+)\/stats/.exec(text)?.[1]
      if (url) statsUrls.set(id, url)
      sink.write(text.replace(/^(?=.)/gm, `${new Date().toISOString()} ${id} `))
      const lines = text.trim().split('\n')
      lastLine = lines[lines.length - 1] ?? lastLine
      tail = [...tail, ...lines].slice(-40)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    slot.child = child
    slot.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (!slot.killing && !stopping) {
          const startup = tail.some((l) => l.includes(`${cfg.mode} failed:`))
          const error = startup
            ? lastLine
            : (tail.find((l) => /^\w*Error\b|^error:/.test(l.trim())) ?? lastLine).trim()
          unexpectedExits.push({
            relayId: id,
            code,
            signal,
            kind: startup ? 'startup' : 'crash',
            lastLine,
            error,
          })
          log(
            `relay ${id} exited on its own (${startup ? 'startup failure' : 'CRASH'}, code ${code}): ${error.slice(0, 200)}`,
          )
          // a crashed relay's leased rows are in flight, as with a kill
          if (!startup)
            void captureInFlight(id).then((inFlight) =>
              kills.push({ at: Date.now(), relayId: id, cause: 'crash', inFlight }),
            )
          // a supervisor restarts it, as Kubernetes would
          setTimeout(() => {
            if (!stopping && slot.child === child) spawnSlot(slot)
          }, 1000)
        }
        resolve()
      })
    })
  }

  /**
   * A dead relay's leases stay until they expire, so right after its death they name its in-flight
   * rows. (During a database restart this waits; after leaseMs another relay may have taken them,
   * and the answer is unknown: null.)
   */
  async function captureInFlight(relayId: string): Promise<string[] | null> {
    // A streamer leases nothing: what it had sent but not confirmed is unknown.
    if (cfg.mode === 'stream') return null
    const started = Date.now()
    try {
      const { rows } = await retry(
        () =>
          pool.query("SELECT id::text FROM outbox_event WHERE locked_by = $1 AND status = 'pending'", [
            relayId,
          ]),
        cfg.leaseMs,
      )
      return Date.now() - started < cfg.leaseMs ? rows.map((r: { id: string }) => r.id) : null
    } catch {
      return null
    }
  }

  for (const slot of slots) spawnSlot(slot)

  async function killOne(): Promise<Kill | undefined> {
    const slot = slots[Math.floor(Math.random() * slots.length)]
    if (!slot?.child || slot.child.exitCode !== null || slot.killing) return undefined
    slot.killing = true
    const relayId = slot.relayId
    slot.child.kill('SIGKILL')
    await slot.exited
    const kill: Kill = { at: Date.now(), relayId, cause: 'SIGKILL', inFlight: null }
    kills.push(kill)
    kill.inFlight = await captureInFlight(relayId)
    slot.killing = false
    if (!stopping) spawnSlot(slot)
    return kill
  }

  async function stop() {
    stopping = true
    const all = slots.map((s) => s.child).filter((c): c is ChildProcess => !!c && c.exitCode === null)
    for (const c of all) c.kill('SIGTERM')
    const deadline = Date.now() + 15_000
    while (all.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline)
      await sleep(100)
    for (const c of all) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await Promise.all(slots.map((s) => s.exited))
    for (const out of logs.values()) out.end()
  }

  return fleet
}
