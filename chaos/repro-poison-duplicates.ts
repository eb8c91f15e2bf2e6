/**
 * Repro: ONE relay, no crash, no fault, one oversized row among 400 ordinary ones. Does Kafka get
 * duplicates? (Guarantee 2 says no duplicates while nothing crashes.)
 *   npx tsx chaos/repro-poison-duplicates.ts
 * Uses a private PostgreSQL and broker of its own (fresh folder and free ports, as a chaos run); both are wiped first.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import pg from 'pg'
import { consumeAll } from './checker.ts'
import { startPrivateKafka, startPrivatePostgres } from './infra.ts'
import { ROOT } from './util.ts'
import { choosePorts, takeWorkspace } from './workspace.ts'

const workspace = takeWorkspace(process.env.CHAOS_DATA_DIR)
const dataDir = workspace.dir
const ports = await choosePorts(process.env)
const db = await startPrivatePostgres(join(dataDir, 'pg'), ports.pg)
const k = await startPrivateKafka(join(dataDir, 'kafka'), ports.kafka, ports.controller)
const pool = new pg.Pool({ connectionString: db.url })
const topic = 'repro.poison'
try {
  const kafka = new Kafka({ clientId: 'repro', brokers: [k.brokers], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
  })
  await admin.disconnect()
  // 400 rows over 40 keys; row 200 carries a 1.2 MB payload (broker limit ~1 MiB)
  await pool.query(
    `INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, topic)
     SELECT gen_random_uuid(), 'r', 'k' || (g % 40), 'r.x',
            CASE WHEN g = 200 THEN jsonb_build_object('blob', repeat('x', 1200000)) ELSE jsonb_build_object('g', g) END, $1
     FROM generate_series(1, 400) g ORDER BY g`,
    [topic],
  )
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(ROOT, 'packages/relay/bin/outbox-relay.mjs'), 'drain', '--quiet'],
    {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: db.url,
        KAFKA_BROKERS: k.brokers,
        DRAIN_BATCH_SIZE: '500',
      },
    },
  ).catch((e: { stdout: string }) => e)
  console.log(`outbox-relay drain (1 relay, batch 500): ${stdout.trim()}`)
  const messages = await consumeAll(kafka, [topic], 60_000)
  const ids = new Map<string, number>()
  for (const m of messages) ids.set(m.id, (ids.get(m.id) ?? 0) + 1)
  const dups = [...ids.values()].filter((n) => n > 1)
  console.log(
    `Kafka: ${messages.length} messages, ${ids.size} distinct ids; ${dups.length} ids duplicated (${dups.reduce((a, n) => a + n - 1, 0)} extra copies, max ${Math.max(0, ...dups)} copies of one id)`,
  )
} finally {
  await pool.end()
  await k.close()
  await db.close()
  workspace.release()
}
