/**
 * `npm run demo`: uses DATABASE_URL / KAFKA_BROKERS when set; otherwise starts an embedded
 * PostgreSQL and the project's local Kafka broker. Ctrl-C stops everything it started.
 * @module
 */
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import { loadConfig } from './config.js'
import { startDemo } from './demo.js'
import { REPO_ROOT, type Service, startEmbeddedPostgres, startLocalKafka } from './infra.js'
import { startTracing } from './tracing.js'
import { welcome } from './welcome.js'

const config = loadConfig()
const tracing = startTracing()
// Stopped right after the demo (which is put first), so its last spans still go out.
const started: Service[] = [{ url: '', stop: tracing.stop }]

async function main() {
  let databaseUrl = config.DATABASE_URL
  if (!databaseUrl) {
    console.log('DATABASE_URL is not set: starting an embedded PostgreSQL...')
    const postgres = await startEmbeddedPostgres(config.EMBEDDED_PG_DIR, config.EMBEDDED_PG_PORT)
    started.push(postgres)
    databaseUrl = postgres.url
  }
  let kafkaBrokers = config.KAFKA_BROKERS
  if (!kafkaBrokers) {
    console.log(
      `KAFKA_BROKERS is not set: starting the local Kafka broker on port ${config.KAFKA_PORT} (scripts/kafka.sh)...`,
    )
    const kafka = await startLocalKafka(config.KAFKA_PORT)
    started.push(kafka)
    kafkaBrokers = [kafka.url]
  }
  const relayToken = config.RELAY_TOKEN ?? randomBytes(24).toString('base64url')
  const demo = await startDemo({
    relayToken,
    databaseUrl,
    kafkaBrokers,
    port: config.PORT,
    drainIntervalMs: config.DRAIN_INTERVAL_MS,
    migrationsDir: resolve(REPO_ROOT, 'prisma/migrations'),
    employeeTopic: config.EMPLOYEE_TOPIC,
    consumerGroup: config.CONSUMER_GROUP,
    onRequest: ({ method, route, status, traceId }) =>
      console.log(`${method} ${route} → ${status}  trace ${traceId}`),
  })
  started.unshift(demo)
  console.log(welcome(demo.url, relayToken, config.DRAIN_INTERVAL_MS, tracing.exportsTo))
}

let stopping = false
async function shutdown(signal: string, exitCode = 0) {
  if (stopping) return
  stopping = true
  console.log(`\n${signal}: stopping...`)
  for (const service of started) {
    await service.stop().catch((error: unknown) => console.error('stop failed:', (error as Error).message))
  }
  process.exit(exitCode)
}
process.on('SIGINT', () => void shutdown('SIGINT'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))

main().catch(async (error: unknown) => {
  console.error(`demo failed to start: ${error instanceof Error ? error.message : String(error)}`)
  await shutdown('error', 1)
})
