/**
 * Part 3: latency in watch mode. A writer commits outbox rows at a steady rate; the relay runs
 * `createWatcher` (LISTEN/NOTIFY); we record per event id
 *  - commit: when the writer's COMMIT returned,
 *  - ack: when the relay's `sendBatch` carrying it resolved (acks = all), via a thin wrapper
 *    around the KafkaPublisher,
 *  - consume: when a kafkajs consumer received it (end to end, an upper bound of the ack).
 * All three clocks are `performance.now()` of this one process.
 */
import { performance } from 'node:perf_hooks'
import type { TestDatabase } from '@prisma-outbox/devkit'
import {
  createEngine,
  createWatcher,
  KafkaPublisher,
  type OutboxMessage,
  type Publisher,
} from '@prisma-outbox/relay'
import type { Consumer, Kafka } from 'kafkajs'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import {
  benchKafka,
  freshDatabase,
  freshTopic,
  keyOf,
  log,
  payloadOf,
  progress,
  sleep,
  summarize,
} from './lib.js'

export interface LatencyResult {
  rate: number
  seconds: number
  rowsPerTx: number
  debounceMs: number
  written: number
  acked: number
  consumed: number
  ack: ReturnType<typeof summarize>
  consume: ReturnType<typeof summarize>
  drains: number
  /** Achieved write rate (events/s). */
  achievedRate: number
}

class TimedPublisher implements Publisher {
  constructor(
    private readonly inner: KafkaPublisher,
    private readonly onAck: (messages: OutboxMessage[], at: number) => void,
  ) {}
  connect() {
    return this.inner.connect()
  }
  disconnect() {
    return this.inner.disconnect()
  }
  ensureTopics(topics: string[]) {
    return this.inner.ensureTopics(topics)
  }
  async publish(messages: OutboxMessage[]) {
    await this.inner.publish(messages)
    this.onAck(messages, performance.now())
  }
}

/** Per event id: when its row committed, when the relay's send of it was acked, when a consumer got it. */
interface Timings {
  committed: Map<string, number>
  acked: Map<string, number>
  consumed: Map<string, number>
}

export async function watchLatency(options: {
  rate: number
  seconds: number
  tickMs: number
  keys: number
  debounceMs?: number
}): Promise<LatencyResult> {
  const { rate, seconds, tickMs, keys } = options
  const debounceMs = options.debounceMs ?? 20
  const db = await freshDatabase()
  const kafka = benchKafka()
  const topic = await freshTopic(kafka, 'latency')
  const times: Timings = { committed: new Map(), acked: new Map(), consumed: new Map() }
  const { publisher, watcher, counter } = watchRelay(db, kafka, debounceMs, times.acked)
  const consumer = kafka.consumer({ groupId: `bench-latency-${Date.now()}`, maxWaitTimeInMs: 100 })
  // A separate small pool for the writer, so it never waits for the relay's connections.
  const writer = new pg.Pool({ connectionString: db.url, max: 4 })
  try {
    await publisher.connect()
    await consumeInto(consumer, topic, times.consumed)
    await watcher.start()
    await writer.query('SELECT 1')

    const total = rate * seconds
    const perTick = Math.max(1, Math.round((rate * tickMs) / 1000))
    const report = progress(`watch mode, ${rate}/s`, total)
    const { written, writeSeconds } = await writeSteadily(
      writer,
      { topic, total, perTick, tickMs, keys },
      times,
      report,
    )
    const deadline = performance.now() + 15_000
    while ((times.acked.size < total || times.consumed.size < total) && performance.now() < deadline)
      await sleep(50)
    report(
      written,
      `acked ${times.acked.size.toLocaleString('en')}, consumed ${times.consumed.size.toLocaleString('en')}`,
    )
    const { ackLat, consumeLat } = latencies(times)
    return {
      rate,
      seconds,
      rowsPerTx: perTick,
      debounceMs,
      written,
      acked: times.acked.size,
      consumed: times.consumed.size,
      ack: summarize(ackLat),
      consume: summarize(consumeLat),
      drains: counter.drains,
      achievedRate: written / writeSeconds,
    }
  } finally {
    await watcher.stop()
    await consumer.disconnect()
    await publisher.disconnect()
    await writer.end()
    await db.drop()
  }
}

/** The relay under test: an engine whose publisher records acks, run by a watcher that counts its drains. */
function watchRelay(db: TestDatabase, kafka: Kafka, debounceMs: number, acked: Map<string, number>) {
  const publisher = new TimedPublisher(new KafkaPublisher({ kafka, createTopics: false }), (messages, at) => {
    for (const m of messages) acked.set(m.id, at)
  })
  const engine = createEngine({
    pool: db.pool,
    publisher,
    options: { batchSize: 500, relayId: 'bench-watch' },
  })
  const counter = { drains: 0 }
  const watcher = createWatcher({
    engine,
    createClient: () => new pg.Client({ connectionString: db.url }),
    debounceMs,
    pollMs: 1_000,
    onDrain: () => {
      counter.drains++
    },
    onError: (error, where) => log(`  watcher ${where} error: ${(error as Error)?.message ?? error}`),
  })
  return { publisher, watcher, counter }
}

/** Subscribes `consumer` to `topic` from the beginning, recording each id's arrival; resolves once it joined. */
async function consumeInto(consumer: Consumer, topic: string, consumed: Map<string, number>): Promise<void> {
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
  await consumer.run({
    eachMessage: async ({ message }) => {
      const id = message.headers?.id?.toString()
      if (id) consumed.set(id, performance.now())
    },
  })
  await joined
}

/**
 * Writes `total` rows, `perTick` per transaction, one transaction every `tickMs`, recording each
 * id's commit time; returns the rows written and the seconds it took.
 */
async function writeSteadily(
  writer: pg.Pool,
  plan: { topic: string; total: number; perTick: number; tickMs: number; keys: number },
  times: Timings,
  report: ReturnType<typeof progress>,
): Promise<{ written: number; writeSeconds: number }> {
  const { total, perTick, tickMs } = plan
  let written = 0
  const t0 = performance.now()
  const inflight = new Set<Promise<void>>()
  // Steady schedule: tick k is due at t0 + k * tickMs; ticks never queue up behind a slow one
  // (each is its own transaction on the writer pool), so a slow relay cannot slow the writer.
  for (let tick = 0; written < total; tick++) {
    const due = t0 + tick * tickMs
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    const n = Math.min(perTick, total - written)
    const p = insertRows(writer, plan.topic, written, n, plan.keys).then((ids) => {
      const at = performance.now()
      for (const id of ids) times.committed.set(id, at)
    })
    written += n
    inflight.add(p)
    p.finally(() => inflight.delete(p))
    report(written, `acked ${times.acked.size.toLocaleString('en')}`)
  }
  await Promise.all(inflight)
  return { written, writeSeconds: (performance.now() - t0) / 1000 }
}

/** Inserts rows `from + 1` … `from + n` of the key/payload sequence in one statement; resolves to their ids. */
async function insertRows(
  writer: pg.Pool,
  topic: string,
  from: number,
  n: number,
  keys: number,
): Promise<string[]> {
  const ids: string[] = []
  const aggregateIds: string[] = []
  const payloads: string[] = []
  for (let g = from + 1; g <= from + n; g++) {
    ids.push(uuidv7())
    aggregateIds.push(keyOf(g, keys))
    payloads.push(payloadOf(g, keys))
  }
  await writer.query(
    `INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, topic)
SELECT id, 'item', aid, 'item.updated', payload::jsonb, $4 FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, aid, payload)`,
    [ids, aggregateIds, payloads, topic],
  )
  return ids
}

/** Commit→ack and commit→consume latencies (ms) of every committed id that was acked / consumed. */
function latencies(times: Timings): { ackLat: number[]; consumeLat: number[] } {
  const ackLat: number[] = []
  const consumeLat: number[] = []
  for (const [id, c] of times.committed) {
    const a = times.acked.get(id)
    if (a !== undefined) ackLat.push(a - c)
    const r = times.consumed.get(id)
    if (r !== undefined) consumeLat.push(r - c)
  }
  return { ackLat, consumeLat }
}
