/**
 * Starts the whole demo in this process: HR API + outbox relay (on a schedule) + directory
 * consumer, against the given PostgreSQL and Kafka. `main.ts` adds the zero-set-up services.
 * @module
 */
import { serve } from '@hono/node-server'
import { applyMigrations } from '@prisma-outbox/devkit/migrate'
import { createEngine, createRelayApp, KafkaPublisher, kafkaHealthCheck } from '@prisma-outbox/relay'
import { tracedPublisher, tracingHooks } from '@prisma-outbox/relay/otel'
import { Kafka, logLevel } from 'kafkajs'
import pg from 'pg'
import { createDemoApp } from './app.js'
import { createPrisma, EMPLOYEE_TOPIC } from './db.js'
import { DIRECTORY_CONSUMER, startDirectoryConsumer } from './directory.js'
import type { TracedRequest } from './tracing.js'

export interface DemoOptions {
  databaseUrl: string
  kafkaBrokers: string[]
  /** 0 picks a free port. */
  port: number
  drainIntervalMs: number
  migrationsDir: string
  /** Bearer token of the relay endpoints mounted at `/outbox`. */
  relayToken: string
  employeeTopic?: string
  consumerGroup?: string
  /** Told the trace id of each request served. */
  onRequest?: (request: TracedRequest) => void
}

export interface RunningDemo {
  url: string
  stop(): Promise<void>
}

export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const employeeTopic = options.employeeTopic ?? EMPLOYEE_TOPIC
  await applyMigrations(options.databaseUrl, [options.migrationsDir])

  const prisma = createPrisma(options.databaseUrl, employeeTopic)
  const reporter = createReporter()
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 4 })
  // An idle connection dropped by the server (restart, shutdown) must not crash the process.
  pool.on('error', (error) => reporter.report(`demo: idle database connection lost: ${error.message}`))
  const kafka = new Kafka({
    clientId: 'prisma-outbox-demo',
    brokers: options.kafkaBrokers,
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ namespace, log }) =>
        reporter.report(`kafkajs ${namespace}: ${log.message}${log.error ? ` (${String(log.error)})` : ''}`),
  })

  const publisher = new KafkaPublisher({ kafka })
  await publisher.connect()
  // Create the topic before the consumer subscribes, so it does not race the broker's auto-create.
  await publisher.ensureTopics?.([employeeTopic])
  // Traced: each event's trace goes on from the request that wrote it, through Kafka.
  const engine = createEngine({ pool, publisher: tracedPublisher(publisher), hooks: tracingHooks() })

  const directory = await startDirectoryConsumer(
    kafka,
    prisma,
    employeeTopic,
    options.consumerGroup ?? DIRECTORY_CONSUMER,
  )
  const schedule = startSchedule(
    () => engine.drain({ budgetMs: 5_000 }),
    options.drainIntervalMs,
    (error) => reporter.report(`demo: scheduled drain failed: ${error.message}`),
  )

  // The relay's own HTTP API, for cron jobs and webhooks: POST /outbox/drain, GET /outbox/stats, ...
  const broker = kafkaHealthCheck(kafka)
  const relayApp = createRelayApp({
    engine,
    pool,
    auth: { token: options.relayToken },
    checkBroker: broker.check,
  })
  const app = createDemoApp(prisma, (root) => root.route('/outbox', relayApp), options.onRequest)
  const server = await new Promise<{ close(cb: () => void): void; port: number }>((resolve) => {
    const s = serve({ fetch: app.fetch, port: options.port, hostname: '127.0.0.1' }, (info) =>
      resolve({ close: (cb) => s.close(() => cb()), port: info.port }),
    )
  })

  return {
    url: `http://127.0.0.1:${server.port}`,
    async stop() {
      reporter.stopping()
      await new Promise<void>((resolve) => server.close(resolve))
      await schedule.stop()
      await directory.stop()
      await broker.close()
      await publisher.disconnect()
      await pool.end()
      await prisma.$disconnect()
    },
  }
}

/**
 * Prints problems to stderr after `graceMs`, dropping those reported once `stopping()` was called
 * or while it is pending. Ctrl-C reaches an embedded PostgreSQL at the same moment as this
 * process, so its connections can fail a moment before the SIGINT handler runs: those failures are
 * the shutdown, not news.
 */
export function createReporter(graceMs = 1_000, print: (message: string) => void = console.error) {
  let stopping = false
  return {
    report(message: string) {
      if (stopping) return
      setTimeout(() => {
        if (!stopping) print(message)
      }, graceMs).unref()
    },
    stopping() {
      stopping = true
    },
  }
}

/** Runs `task` every `intervalMs` (never overlapping); `stop()` waits for a run in progress. */
export function startSchedule(
  task: () => Promise<unknown>,
  intervalMs: number,
  onError: (error: Error) => void = (error) => console.error('demo: scheduled drain failed:', error.message),
) {
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> = Promise.resolve()
  const tick = () => {
    running = task()
      .catch((error: unknown) => onError(error instanceof Error ? error : new Error(String(error))))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs)
      })
  }
  tick()
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running
    },
  }
}
