/**
 * Part 7: the Kafka clients side by side. For each publisher (kafkajs, `@platformatic/kafka`,
 * `@confluentinc/kafka-javascript` when it loads), interleaved in one run: a backlog drain by the
 * relay's engine, and the bare `publish` ceiling (the same messages built in memory, no database).
 * Events/s and CPU of this process per event (librdkafka's threads included).
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { kafkaBrokers } from '@prisma-outbox/devkit'
import { KafkaPublisher, type OutboxMessage, type Publisher } from '@prisma-outbox/relay'
import { type ConfluentModule, ConfluentPublisher } from '@prisma-outbox/relay/confluent'
import { PlatformaticPublisher } from '@prisma-outbox/relay/platformatic'
import { relayDrain } from './drain.js'
import {
  benchKafka,
  type CpuSplit,
  cpuMeter,
  freshTopic,
  keyOf,
  log,
  payloadOf,
  progress,
  topicMessageCount,
} from './lib.js'

export type ClientName = 'kafkajs' | 'platformatic' | 'confluent'

export interface PublisherRun {
  client: ClientName
  kind: 'drain' | 'ceiling'
  rows: number
  ms: number
  eventsPerSec: number
  /** CPU seconds of this process per event, in µs. */
  cpuUsPerEvent: number
  cpu: CpuSplit
  inKafka: number
}

export interface PublishersResult {
  rows: number
  batchSize: number
  runs: PublisherRun[]
  /** Why a client was left out (not installed, does not load). */
  skipped: Partial<Record<ClientName, string>>
}

const CONFLUENT_VERSION = '1.10.1'

/**
 * `@confluentinc/kafka-javascript` from `RELAY_CONFLUENT_DIR`, else from the folder
 * `npm run test:confluent` installs it in, else from node_modules; the reason when none loads.
 */
function loadConfluent(): ConfluentModule | string {
  const cache = process.env.PRISMA_OUTBOX_CACHE ?? join(homedir(), '.cache', 'prisma-outbox')
  const dirs = [
    process.env.RELAY_CONFLUENT_DIR,
    join(cache, `confluent-kafka-javascript-${CONFLUENT_VERSION}`),
    process.cwd(),
  ].filter((d): d is string => d !== undefined && d !== '' && existsSync(d))
  const reasons: string[] = []
  for (const dir of dirs) {
    try {
      return createRequire(join(dir, 'package.json'))('@confluentinc/kafka-javascript') as ConfluentModule
    } catch (error) {
      reasons.push(`${dir}: ${(error as Error).message.split('\n')[0]}`)
    }
  }
  return `@confluentinc/kafka-javascript does not load (${reasons.join('; ')}); run \`npm run test:confluent --workspace @prisma-outbox/relay\` once to install it into the cache`
}

/** A publisher factory per client that loads; the others with the reason. */
function clients(): { make: Map<ClientName, () => Publisher>; skipped: PublishersResult['skipped'] } {
  const brokers = kafkaBrokers()
  const make = new Map<ClientName, () => Publisher>([
    ['kafkajs', () => new KafkaPublisher({ kafka: benchKafka(), createTopics: false })],
    ['platformatic', () => new PlatformaticPublisher({ brokers, createTopics: false })],
  ])
  const skipped: PublishersResult['skipped'] = {}
  const confluent = loadConfluent()
  if (typeof confluent === 'string') skipped.confluent = confluent
  else
    make.set('confluent', () => new ConfluentPublisher({ brokers, module: confluent, createTopics: false }))
  return { make, skipped }
}

/** The bare ceiling of one publisher: prebuilt messages, one awaited `publish` per batch. */
async function ceiling(
  client: ClientName,
  create: () => Publisher,
  rows: number,
  keys: number,
  batchSize: number,
) {
  const kafka = benchKafka()
  const topic = await freshTopic(kafka, `ceiling-${client}`)
  const messages: OutboxMessage[] = []
  for (let g = 1; g <= rows; g++) {
    const id = crypto.randomUUID()
    messages.push({
      id,
      topic,
      key: keyOf(g, keys),
      value: payloadOf(g, keys),
      headers: { id, eventType: 'item.updated', aggregateType: 'item' },
    })
  }
  const publisher = create()
  await publisher.connect()
  try {
    const report = progress(`${client} bare publish ${batchSize}`, rows)
    const meter = cpuMeter()
    const t0 = performance.now()
    for (let i = 0; i < rows; i += batchSize) {
      await publisher.publish(messages.slice(i, i + batchSize))
      report(Math.min(rows, i + batchSize))
    }
    const ms = performance.now() - t0
    const cpu = meter()
    return { ms, cpu, inKafka: await topicMessageCount(kafka, topic) }
  } finally {
    await publisher.disconnect()
  }
}

const runOf = (
  client: ClientName,
  kind: PublisherRun['kind'],
  rows: number,
  r: { ms: number; cpu: CpuSplit; inKafka: number },
): PublisherRun => ({
  client,
  kind,
  rows,
  ms: r.ms,
  eventsPerSec: rows / (r.ms / 1000),
  cpuUsPerEvent: (r.cpu.node / rows) * 1e6,
  cpu: r.cpu,
  inKafka: r.inKafka,
})

/**
 * Every client's ceiling and drain, `repeat` rounds, the clients interleaved within each round
 * (so drift of the shared machine hits them alike). `measure` wraps each run (quiet-machine check).
 */
export async function comparePublishers(options: {
  rows: number
  keys: number
  batchSize: number
  repeat: number
  measure: <T>(label: string, fn: () => Promise<T>) => Promise<T>
}): Promise<PublishersResult> {
  const { rows, keys, batchSize } = options
  const { make, skipped } = clients()
  if (skipped.confluent) log(`  confluent: skipped: ${skipped.confluent}`)
  const runs: PublisherRun[] = []
  for (let round = 1; round <= options.repeat; round++) {
    for (const [client, create] of make) {
      log(`  round ${round}/${options.repeat}: ${client}`)
      const c = await options.measure(`${client} ceiling`, () =>
        ceiling(client, create, rows, keys, batchSize),
      )
      runs.push(runOf(client, 'ceiling', rows, c))
      const d = await options.measure(`${client} drain`, () =>
        relayDrain({ rows, keys, relays: 1, batchSize, createPublisher: create, variant: client }),
      )
      runs.push(runOf(client, 'drain', rows, d))
      const last = runs.slice(-2)
      log(
        `  → ${client}: ceiling ${Math.round(last[0]?.eventsPerSec ?? 0)} events/s, drain ${Math.round(last[1]?.eventsPerSec ?? 0)} events/s, drain CPU ${(last[1]?.cpuUsPerEvent ?? 0).toFixed(1)} µs/event`,
      )
    }
  }
  return { rows, batchSize, runs, skipped }
}

/** The median run of `client` and `kind` by events/s (undefined when it did not run). */
export function medianRun(
  result: PublishersResult,
  client: ClientName,
  kind: PublisherRun['kind'],
): (PublisherRun & { all: PublisherRun[] }) | undefined {
  const all = result.runs.filter((r) => r.client === client && r.kind === kind)
  const sorted = [...all].sort((a, b) => a.eventsPerSec - b.eventsPerSec)
  const median = sorted[Math.floor((sorted.length - 1) / 2)]
  return median && { ...median, all }
}
