/**
 * One trace from the demo's HTTP request to the handler that applied its event (real PostgreSQL
 * and Kafka): the request's server span → the write's capture span (its outbox row carries that
 * span's traceparent via `traceHeaders`) → the relay's create span per message → Kafka → the inbox's
 * `traced` typed handler. First with the relay in this process (in-memory exporter), then with
 * the relay as its own process (`outbox-relay drain`, the relay README's `tracing.mjs` preloaded,
 * exporting over OTLP/HTTP to an endpoint this test serves).
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SpanKind, trace } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { createInbox, subscribe, typedHandler } from '@prisma-outbox/consumer'
import { traced } from '@prisma-outbox/consumer/otel'
import {
  createTestDatabase,
  createTopics,
  kafkaBrokers,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { type InMemoryTracing, inMemoryTracing } from '@prisma-outbox/devkit/otel'
import { createEngine, KafkaPublisher } from '@prisma-outbox/relay'
import { tracedPublisher, tracingHooks } from '@prisma-outbox/relay/otel'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDemoApp } from '../src/app.js'
import { createPrisma, type DemoPrisma } from '../src/db.js'
import { events } from '../src/generated/outbox/index.js'
import type { TracedRequest } from '../src/tracing.js'
import { otlpEndpoint } from './otlp.js'

const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const MIGRATIONS = join(REPO, 'prisma/migrations')
const RELAY = dirname(createRequire(import.meta.url).resolve('@prisma-outbox/relay/package.json'))

/** The relay README's `tracing.mjs`, as written, in a folder that resolves the repository's packages. */
function readmeTracingSetup(): { file: string; remove(): void } {
  const readme = readFileSync(join(RELAY, 'README.md'), 'utf8')
  const block = /```js\n(\/\/ tracing\.mjs\n[\s\S]*?)```/.exec(readme)?.[1]
  if (!block) throw new Error('the relay README has no ```js block starting with // tracing.mjs')
  const cache = join(REPO, 'node_modules/.cache')
  mkdirSync(cache, { recursive: true })
  const dir = mkdtempSync(join(cache, 'relay-tracing-'))
  const file = join(dir, 'tracing.mjs')
  writeFileSync(file, block)
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Runs `outbox-relay <args>` (the built bin) with `env` and `node --import <preload>`. */
function relayProcess(args: string[], env: Record<string, string>, preload: string) {
  const child = spawn(process.execPath, ['--import', preload, join(RELAY, 'bin/outbox-relay.mjs'), ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString()
  })
  return new Promise<{ code: number | null; output: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, output })),
  )
}

describe('one trace from the request to the handler', () => {
  let db: TestDatabase
  let pool: pg.Pool
  let tracing: InMemoryTracing
  const kafka = testKafka()
  const publisher = new KafkaPublisher({ kafka })
  const clients: DemoPrisma[] = []

  beforeAll(async () => {
    tracing = inMemoryTracing()
    db = await createTestDatabase({ migrations: [MIGRATIONS], prefix: 'outbox_demo_traced' })
    pool = new pg.Pool({ connectionString: db.url, max: 2 })
    await publisher.connect()
  })
  afterAll(async () => {
    tracing?.stop()
    await publisher.disconnect?.()
    for (const client of clients) await client.$disconnect()
    await pool?.end()
    await db?.drop()
  })

  /** POST /employees through the demo app; resolves to the request span and the reported trace id. */
  async function createEmployee(topic: string) {
    tracing.exporter.reset()
    const prisma = createPrisma(db.url, topic)
    clients.push(prisma)
    const reported: TracedRequest[] = []
    const app = createDemoApp(prisma, undefined, (r) => reported.push(r))
    const response = await app.request('/employees', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `ada-${randomUUID()}@example.com`, name: 'Ada' }),
    })
    expect(response.status).toBe(201)
    const request = tracing.exporter.getFinishedSpans().find((s) => s.name === 'POST /employees')
    expect(request?.kind).toBe(SpanKind.SERVER)
    expect(reported).toEqual([
      { method: 'POST', route: '/employees', status: 201, traceId: request?.spanContext().traceId },
    ])
    // request → write: the capture span, whose context the outbox row carries.
    const write = tracing.exporter.getFinishedSpans().find((s) => s.name === 'outbox capture Employee.create')
    expect(write?.spanContext().traceId).toBe(request?.spanContext().traceId)
    expect(write?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId)
    return { prisma, request: request as ReadableSpan, write: write as ReadableSpan }
  }

  /** Consumes `topic` with the traced typed handler; resolves to its process span. */
  async function handleOne(prisma: DemoPrisma, topic: string): Promise<ReadableSpan | undefined> {
    let handled: (spanId: string | undefined) => void = () => undefined
    const handledIn = new Promise<string | undefined>((resolve) => (handled = resolve))
    const inbox = createInbox(prisma, { consumer: `traced-${randomUUID()}` })
    const consumer = kafka.consumer({ groupId: `traced-${randomUUID()}` })
    await consumer.connect()
    await subscribe(consumer, { topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: inbox.eachMessage(
        traced(
          typedHandler(events, {
            'employee.created': async () => handled(trace.getActiveSpan()?.spanContext().spanId),
          }),
        ),
      ),
    })
    const handlerSpanId = await handledIn
    await consumer.disconnect()
    const process = tracing.exporter.getFinishedSpans().find((s) => s.name === `process ${topic}`)
    expect(process?.kind).toBe(SpanKind.CONSUMER)
    expect(handlerSpanId).toBe(process?.spanContext().spanId)
    return process
  }

  it('with the relay in process: request → write → create (relay) → process (consumer)', async () => {
    const topic = uniqueTopic('demo.traced')
    await createTopics(kafka, [topic], 1)
    const { prisma, request, write } = await createEmployee(topic)

    const engine = createEngine({ pool, publisher: tracedPublisher(publisher), hooks: tracingHooks() })
    expect((await engine.drain({ budgetMs: 5_000 })).published).toBe(1)
    const process = await handleOne(prisma, topic)

    const spans = tracing.exporter.getFinishedSpans()
    const create = spans.find((s) => s.name === `create ${topic}`)
    expect(create?.kind).toBe(SpanKind.PRODUCER)
    expect(create?.spanContext().traceId).toBe(request.spanContext().traceId)
    expect(create?.parentSpanContext?.spanId).toBe(write.spanContext().spanId)
    expect(process?.spanContext().traceId).toBe(request.spanContext().traceId)
    expect(process?.parentSpanContext?.spanId).toBe(create?.spanContext().spanId)
  })

  it('with the relay as its own process, exporting over OTLP: the same trace, through the relay', async () => {
    const topic = uniqueTopic('demo.traced')
    await createTopics(kafka, [topic], 1)
    const endpoint = await otlpEndpoint()
    const setup = readmeTracingSetup()
    try {
      const { prisma, request, write } = await createEmployee(topic)
      const relay = await relayProcess(
        ['drain', '--topics', topic, '--budget-ms', '10000', '--quiet'],
        {
          DATABASE_URL: db.url,
          KAFKA_BROKERS: kafkaBrokers().join(','),
          RELAY_TRACING: 'true',
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint.url,
          OTEL_SERVICE_NAME: 'outbox-relay-test',
        },
        setup.file,
      )
      expect(relay, relay.output).toMatchObject({ code: 0 })
      expect(JSON.parse(relay.output.trim())).toMatchObject({ published: 1, remaining: 0 })
      const process = await handleOne(prisma, topic)

      const { traceId } = request.spanContext()
      const { spanId } = write.spanContext()
      const relaySpans = endpoint.spans
      expect(new Set(relaySpans.map((s) => s.service))).toEqual(new Set(['outbox-relay-test']))
      const create = relaySpans.find((s) => s.name === `create ${topic}`)
      const send = relaySpans.find((s) => s.name === `send ${topic}`)
      const batch = relaySpans.find((s) => s.name === 'relay batch')
      // write → create: the relay process continued the writer's trace.
      expect(create).toMatchObject({ traceId, parentSpanId: spanId, kind: 4 /* PRODUCER */ })
      // create → process: the consumer's span is the relay's create span's child.
      expect(process?.spanContext().traceId).toBe(traceId)
      expect(process?.parentSpanContext?.spanId).toBe(create?.spanId)
      // The relay's own trace: batch → send, linked to the write and the create span.
      expect(send?.parentSpanId).toBe(batch?.spanId)
      expect(send?.links?.map((l) => l.spanId)).toEqual([create?.spanId])
      expect(batch?.links).toEqual([expect.objectContaining({ traceId, spanId })])
      const size = batch?.attributes?.find((a) => a.key === 'outbox.batch.size')?.value.intValue
      expect(Number(size)).toBe(1)
    } finally {
      setup.remove()
      endpoint.server.close()
    }
  })
})
