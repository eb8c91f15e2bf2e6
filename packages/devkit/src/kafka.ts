/**
 * Kafka helpers for tests: a client on the local broker (or `KAFKA_BROKERS`), a fresh topic per
 * test, and a consumer that collects what a topic received.
 * @module
 */
import { randomBytes } from 'node:crypto'
import { type IHeaders, Kafka, logLevel } from 'kafkajs'

/**
 * Brokers from `KAFKA_BROKERS` (comma separated), else the project's local broker on `KAFKA_PORT`
 * (the port scripts/kafka.sh starts it on; 9092 by default).
 */
export function kafkaBrokers(env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = env.KAFKA_BROKERS?.trim()
  if (raw) return raw.split(',').map((b) => b.trim())
  const port = env.KAFKA_PORT?.trim() || '9092'
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    throw new Error(`KAFKA_PORT must be a port number (1-65535), got "${port}"`)
  }
  return [`127.0.0.1:${port}`]
}

/** A kafkajs client for tests, quiet unless something is wrong. */
export function testKafka(clientId = 'outbox-test'): Kafka {
  return new Kafka({ clientId, brokers: kafkaBrokers(), logLevel: logLevel.ERROR })
}

/** A unique topic name: each test gets its own, so runs never see each other's messages. */
export function uniqueTopic(prefix = 'test'): string {
  return `${prefix}.${randomBytes(6).toString('hex')}`
}

/**
 * Creates topics and waits until each partition has a leader (auto-created topics can briefly
 * answer "This server does not host this topic-partition" under KRaft).
 */
export async function createTopics(kafka: Kafka, topics: string[], numPartitions = 3): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((topic) => ({ topic, numPartitions, replicationFactor: 1 })),
    })
  } finally {
    await admin.disconnect()
  }
}

/** A message as a consumer received it, with headers decoded to strings. */
export interface CollectedMessage {
  topic: string
  partition: number
  offset: string
  key: string | null
  value: string | null
  headers: Record<string, string>
}

export function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue
    const first = Array.isArray(value) ? value[0] : value
    out[name] = first === undefined ? '' : first.toString()
  }
  return out
}

/**
 * Reads `topics` from the beginning until `count` messages arrived or `timeoutMs` passed, and
 * returns them in the order each partition delivered them.
 */
export async function collectMessages(
  kafka: Kafka,
  topics: string[],
  options: { count: number; timeoutMs?: number; settleMs?: number },
): Promise<CollectedMessage[]> {
  const { count, timeoutMs = 20_000, settleMs = 0 } = options
  const consumer = kafka.consumer({ groupId: `collector-${randomBytes(6).toString('hex')}` })
  const messages: CollectedMessage[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topics, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      let settling = false
      const deadline = setTimeout(resolve, timeoutMs)
      const done = () => {
        clearTimeout(deadline)
        if (settleMs > 0) {
          // Keep listening a little longer so unexpected extra messages (duplicates) show up.
          if (!settling) setTimeout(resolve, settleMs)
          settling = true
        } else resolve()
      }
      consumer
        .run({
          eachMessage: async ({ topic, partition, message }) => {
            messages.push({
              topic,
              partition,
              offset: message.offset,
              key: message.key?.toString() ?? null,
              value: message.value?.toString() ?? null,
              headers: decodeHeaders(message.headers),
            })
            if (messages.length >= count) done()
          },
        })
        .catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return messages
}
