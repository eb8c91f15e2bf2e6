/**
 * The `outbox-relay` CLI as a child process against real PostgreSQL and Kafka: exit codes,
 * output, and `serve` end to end. The behaviour tests run the TypeScript sources (through the
 * tsx loader, so a stale `dist/` cannot hide a change) with the same three lines as the bin;
 * one test runs the bin itself (compiled `dist/` when present, else the sources). The logs: JSON
 * lines, and no warning or error at a normal start on topics the relay has to create.
 */
import {
  collectMessages,
  createTopics,
  kafkaBrokers,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { start } from './cli-process.js'
import { insertRows, statuses, testDatabase, waitClaimable } from './helpers.js'

const kafka = testKafka('relay-cli-test')
let db: TestDatabase

beforeEach(async () => {
  db = await testDatabase()
})
afterEach(async () => {
  await db.drop()
})

const run = (args: string[], env: Record<string, string | undefined>, options: { bin?: boolean } = {}) =>
  start(args, env, options).done

const env = () => ({
  DATABASE_URL: db.url,
  KAFKA_BROKERS: kafkaBrokers().join(','),
  KAFKA_CLIENT_ID: 'relay-cli-test',
})

describe('outbox-relay CLI', () => {
  it('Should run as the outbox-relay bin: help, and exit 2 on a bad environment', async () => {
    const help = await run(['--help'], {}, { bin: true })
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/^usage: outbox-relay <command>/)
    const bad = await run(['drain'], { KAFKA_BROKERS: '127.0.0.1:9092' }, { bin: true })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/DATABASE_URL: is required/)
  })

  it('Should exit 2 naming the invalid and missing variables, before connecting to anything', async () => {
    const r = await run(['drain'], { KAFKA_BROKERS: 'kafka-without-port', DRAIN_BATCH_SIZE: 'lots' })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/DATABASE_URL: is required/)
    expect(r.stderr).toMatch(/KAFKA_BROKERS\.0: each broker must be host:port/)
    expect(r.stderr).toMatch(/DRAIN_BATCH_SIZE/)
    expect(r.stdout).toBe('')
  })

  it('Should exit 2 for serve without an auth choice, a bad flag, or an unknown command', async () => {
    const serve = await run(['serve'], env())
    expect(serve.code).toBe(2)
    expect(serve.stderr).toMatch(/RELAY_TOKEN: is required for serve/)
    const flag = await run(['drain', '--max-events', 'many'], env())
    expect(flag.code).toBe(2)
    expect(flag.stderr).toMatch(/--max-events/)
    const command = await run(['publish'], env())
    expect(command.code).toBe(2)
    expect(command.stderr).toMatch(/unknown command "publish"/)
  })

  it('Should exit 0 when there is nothing to do', async () => {
    const r = await run(['drain'], env())
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ published: 0, retried: 0, dead: 0, remaining: 0 })
  })

  it('Should say so and publish untouched messages when RELAY_TRACING is on without an SDK', async () => {
    const topic = uniqueTopic('relay-cli')
    await createTopics(kafka, [topic], 1)
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    await insertRows(db.pool, [{ topic, key: 'k', headers: { traceparent } }])
    await waitClaimable(db.pool)
    const r = await run(['drain', '--topics', topic], { ...env(), RELAY_TRACING: 'true' })
    expect(r.stderr).toMatch(/RELAY_TRACING is on, but no OpenTelemetry SDK is registered/)
    expect(r.code).toBe(0)
    const [message] = await collectMessages(kafka, [topic], { count: 1 })
    expect(message?.headers.traceparent).toBe(traceparent)
  })

  it.each(['kafkajs', 'platformatic'])(
    'Should exit 0 after publishing every due row, with no progress output off a TTY (RELAY_KAFKA_CLIENT=%s)',
    async (client) => {
      const topic = uniqueTopic('relay-cli')
      await createTopics(kafka, [topic], 1)
      const ids = await insertRows(
        db.pool,
        Array.from({ length: 30 }, (_, i) => ({ topic, key: `k${i % 3}` })),
      )
      await waitClaimable(db.pool)
      const r = await run(['drain', '--topics', topic], {
        ...env(),
        DRAIN_BATCH_SIZE: '10',
        RELAY_KAFKA_CLIENT: client,
      })
      expect(r.stderr).not.toMatch(/draining:/)
      expect(r.code).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ published: 30, remaining: 0 })
      expect(await statuses(db.pool)).toEqual({ published: 30 })
      const messages = await collectMessages(kafka, [topic], { count: 30 })
      expect(messages.map((m) => m.headers.id).sort()).toEqual([...ids].sort())
    },
  )

  it('Should exit 2 saying how to install a chosen client that is not installed', async () => {
    const r = await run(['drain'], { ...env(), RELAY_KAFKA_CLIENT: 'confluent' })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/RELAY_KAFKA_CLIENT=confluent: the client cannot be loaded/)
    expect(r.stderr).toMatch(/npm install @confluentinc\/kafka-javascript/)
    const bad = await run(['drain'], { ...env(), RELAY_KAFKA_CLIENT: 'rdkafka' })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/RELAY_KAFKA_CLIENT: must be one of kafkajs, platformatic, confluent/)
  })

  it('Should exit 1 when due rows remain (--max-events reached)', async () => {
    const topic = uniqueTopic('relay-cli')
    await createTopics(kafka, [topic], 1)
    await insertRows(
      db.pool,
      Array.from({ length: 10 }, (_, i) => ({ topic, key: `k${i}` })),
    )
    await waitClaimable(db.pool)
    const r = await run(['drain', '--max-events', '4'], { ...env(), DRAIN_BATCH_SIZE: '2' })
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout)).toMatchObject({ published: 4, remaining: 6 })
  })

  it('Should exit 1 naming the failure when the database is unreachable', async () => {
    const r = await run(['drain'], { ...env(), DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/nope' })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/drain failed: .*(ECONNREFUSED|connect)/)
  })

  it('Should serve the API, drain on an authenticated request, and stop on SIGTERM with exit 0', async () => {
    const topic = uniqueTopic('relay-cli')
    await createTopics(kafka, [topic], 1)
    await insertRows(
      db.pool,
      Array.from({ length: 5 }, (_, i) => ({ topic, key: `k${i}` })),
    )
    const token = 'serve-token-'.padEnd(40, 'q')
    const { child, done } = start(['serve', '--port', '0'], {
      ...env(),
      RELAY_TOKEN: token,
      HOST: '127.0.0.1',
    })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('serve did not start')), 30_000)
        let seen = ''
        child.stderr?.on('data', (d: Buffer) => {
          seen += d.toString()
          const m = /listening on (http:\/\/\S+)/.exec(seen)
          if (m) {
            clearTimeout(timer)
            resolve(m[1] as string)
          }
        })
        child.on('close', () => reject(new Error(`serve exited early: ${seen}`)))
      })
      const health = await fetch(`${url}/health`)
      expect(health.status).toBe(200)
      expect(await health.json()).toEqual({ status: 'ok', checks: { database: 'ok', broker: 'ok' } })
      expect((await fetch(`${url}/stats`)).status).toBe(401)
      let published = 0
      for (let i = 0; i < 20 && published < 5; i++) {
        const res = await fetch(`${url}/drain`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}` },
        })
        expect(res.status).toBe(200)
        published += ((await res.json()) as { published: number }).published
      }
      expect(published).toBe(5)
      const metrics = await (
        await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${token}` } })
      ).text()
      expect(metrics).toContain('outbox_relay_published_total 5')
    } finally {
      child.kill('SIGTERM')
    }
    const r = await done
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/stopping/)
    expect(r.stderr).not.toContain(token)
  })

  it('Should watch: publish a new row on NOTIFY (polling set to 60 s) and stop on SIGTERM with exit 0', async () => {
    const topic = uniqueTopic('relay-cli')
    await createTopics(kafka, [topic], 1)
    const { child, done } = start(['watch'], { ...env(), WATCH_POLL_MS: '60000' })
    let seen = ''
    child.stderr?.on('data', (d: Buffer) => {
      seen += d.toString()
    })
    const waitFor = async (re: RegExp, what: string) => {
      const deadline = Date.now() + 15_000
      while (!re.test(seen)) {
        if (Date.now() > deadline) throw new Error(`no ${what} in: ${seen}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    try {
      await waitFor(/listening for notifications \(poll every 60000 ms\)/, 'LISTEN')
      const [id] = await insertRows(db.pool, [{ topic, key: 'watched' }])
      // 'start' when the row landed while the first drain (right after LISTEN) was still running
      await waitFor(/drain \((notify|start)\): published 1,/, 'drain on notify')
      const messages = await collectMessages(kafka, [topic], { count: 1 })
      expect(messages.map((m) => m.headers.id)).toEqual([id])
    } finally {
      child.kill('SIGTERM')
    }
    const r = await done
    expect(r.code).toBe(0)
  })
})

interface LogLine {
  level: string
  msg: string
  [field: string]: unknown
}

/** Every non-empty line parsed as JSON; throws naming the first line that is not. */
function parseLines(text: string, stream: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as LogLine
      } catch {
        throw new Error(`${stream} holds a line that is not JSON: ${line}`)
      }
    })
}

describe('outbox-relay logs', () => {
  it('Should start watch on new topics with JSON lines only, none of them a warning or an error', async () => {
    const topics = [uniqueTopic('relay-log'), uniqueTopic('relay-log'), uniqueTopic('relay-log')]
    const ids = await insertRows(
      db.pool,
      topics.map((topic, i) => ({ topic, key: `k${i}` })),
    )
    const { child, done, output } = start(['watch'], {
      ...env(),
      KAFKA_TOPIC_PARTITIONS: '3',
      WATCH_POLL_MS: '60000',
    })
    try {
      const deadline = Date.now() + 30_000
      while (!/published 3/.test(output())) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no drain in: ${output()}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    } finally {
      child.kill('SIGTERM')
    }
    const r = await done
    expect(r.code).toBe(0)
    const messages = await collectMessages(kafka, topics, { count: 3 })
    expect(messages.map((m) => m.headers.id).sort()).toEqual([...ids].sort())
    const lines = [...parseLines(r.stdout, 'stdout'), ...parseLines(r.stderr, 'stderr')]
    for (const line of lines) {
      expect(typeof line.msg, JSON.stringify(line)).toBe('string')
      expect(['debug', 'info'], JSON.stringify(line)).toContain(line.level)
    }
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/listening for notifications/),
        expect.stringMatching(/published 3/),
      ]),
    )
  })
})
