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
import {
  createEngine,
  createWatcher,
  KafkaPublisher,
  type OutboxMessage,
  type Publisher,
} from '@prisma-outbox/relay'
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
  const committed = new Map<string, number>()
  const acked = new Map<string, number>()
  const consumed = new Map<string, number>()
  const publisher = new TimedPublisher(new KafkaPublisher({ kafka, createTopics: false }), (messages, at) => {
    for (const m of messages) acked.set(m.id, at)
  })
  const engine = createEngine({
    pool: db.pool,
    publisher,
    options: { batchSize: 500, relayId: 'bench-watch' },
  })
  let drains = 0
  const watcher = createWatcher({
    engine,
    createClient: () => new pg.Client({ connectionString: db.url }),
    debounceMs,
    pollMs: 1_000,
    onDrain: () => {
      drains++
    },
    onError: (error, where) => log(`  watcher ${where} error: ${(error as Error)?.message ?? error}`),
  })
  const consumer = kafka.consumer({ groupId: `bench-latency-${Date.now()}`, maxWaitTimeInMs: 100 })
  // A separate small pool for the writer, so it never waits for the relay's connections.
  const writer = new pg.Pool({ connectionString: db.url, max: 4 })
  try {
    await publisher.connect()
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
    await watcher.start()
    await writer.query('SELECT 1')

    const total = rate * seconds
    const perTick = Math.max(1, Math.round((rate * tickMs) / 1000))
    const report = progress(`watch mode, ${rate}/s`, total)
    let written = 0
    let g = 0
    const t0 = performance.now()
    const inflight = new Set<Promise<void>>()
    // Steady schedule: tick k is due at t0 + k * tickMs; ticks never queue up behind a slow one
    // (each is its own transaction on the writer pool), so a slow relay cannot slow the writer.
    for (let tick = 0; written < total; tick++) {
      const due = t0 + tick * tickMs
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      const n = Math.min(perTick, total - written)
      written += n
      const ids: string[] = []
      const aggregateIds: string[] = []
      const payloads: string[] = []
      for (let i = 0; i < n; i++) {
        g++
        ids.push(uuidv7())
        aggregateIds.push(keyOf(g, keys))
        payloads.push(payloadOf(g, keys))
      }
      const p = writer
        .query(
          `INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, topic)
SELECT id, 'item', aid, 'item.updated', payload::jsonb, $4 FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, aid, payload)`,
          [ids, aggregateIds, payloads, topic],
        )
        .then(() => {
          const at = performance.now()
          for (const id of ids) committed.set(id, at)
        })
      inflight.add(p)
      p.finally(() => inflight.delete(p))
      report(written, `acked ${acked.size.toLocaleString('en')}`)
    }
    await Promise.all(inflight)
    const writeSeconds = (performance.now() - t0) / 1000
    const deadline = performance.now() + 15_000
    while ((acked.size < total || consumed.size < total) && performance.now() < deadline) await sleep(50)
    report(
      written,
      `acked ${acked.size.toLocaleString('en')}, consumed ${consumed.size.toLocaleString('en')}`,
    )

    const ackLat: number[] = []
    const consumeLat: number[] = []
    for (const [id, c] of committed) {
      const a = acked.get(id)
      if (a !== undefined) ackLat.push(a - c)
      const r = consumed.get(id)
      if (r !== undefined) consumeLat.push(r - c)
    }
    return {
      rate,
      seconds,
      rowsPerTx: perTick,
      debounceMs,
      written,
      acked: acked.size,
      consumed: consumed.size,
      ack: summarize(ackLat),
      consume: summarize(consumeLat),
      drains,
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
