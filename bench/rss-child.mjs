// Part 4, the relay process: plain Node on the built relay (no tsx, no benchmark code loaded),
// draining the backlog the parent filled. Prints JSON lines on stdout: ready, progress, done.
// Usage: node bench/rss-child.mjs <database url> <batch size>
import { readFileSync } from 'node:fs'
import { createEngine, KafkaPublisher } from '@prisma-outbox/relay'
import { Kafka, logLevel } from 'kafkajs'
import pg from 'pg'

const [url, batch] = process.argv.slice(2)
const kb = (field) =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))?.[1])
const say = (o) => {
  const m = process.memoryUsage()
  const mem = {
    rssKB: kb('VmRSS'),
    hwmKB: kb('VmHWM'),
    heapMB: m.heapUsed / 2 ** 20,
    externalMB: m.external / 2 ** 20,
  }
  process.stdout.write(`${JSON.stringify({ ...o, ...mem })}\n`)
}

const pool = new pg.Pool({ connectionString: url, max: 4 })
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')
const kafka = new Kafka({ clientId: 'bench-rss', brokers, logLevel: logLevel.ERROR })
const publisher = new KafkaPublisher({ kafka, createTopics: false })
await publisher.connect()
let published = 0
const engine = createEngine({
  pool,
  publisher,
  options: { batchSize: Number(batch) || 500 },
  hooks: {
    onBatch: (b) => {
      published += b.published
    },
  },
})
say({ ready: true })
const t0 = performance.now()
const ticker = setInterval(() => say({ published }), 1000)
for (;;) {
  const r = await engine.drain()
  if (r.remaining === 0) break
}
clearInterval(ticker)
const ms = performance.now() - t0
say({ done: true, published, ms })
await publisher.disconnect()
await pool.end()
