import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import {
  collectMessages,
  createTestDatabase,
  createTopics,
  kafkaBrokers,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningDemo, startDemo } from '../src/demo.js'

const MIGRATIONS = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url))

let db: TestDatabase
let demo: RunningDemo
const topic = uniqueTopic('demo.employee')
const kafka = testKafka()
const RELAY_TOKEN = 'demo-e2e-token-0123456789abcdefghijkl'

beforeAll(async () => {
  db = await createTestDatabase({ migrations: [], prefix: 'outbox_demo_e2e' })
  // One partition: the test can tell when a later message has been consumed after an earlier one.
  await createTopics(kafka, [topic], 1)
  demo = await startDemo({
    databaseUrl: db.url,
    kafkaBrokers: kafkaBrokers(),
    port: 0,
    drainIntervalMs: 100,
    migrationsDir: MIGRATIONS,
    relayToken: RELAY_TOKEN,
    employeeTopic: topic,
    consumerGroup: `directory-${randomUUID()}`,
  })
})
afterAll(async () => {
  await demo?.stop()
  await db?.drop()
})

const api = (path: string, init?: { method?: string; body?: unknown }) =>
  fetch(`${demo.url}${path}`, {
    method: init?.method ?? 'GET',
    headers: { 'content-type': 'application/json' },
    body: init?.body === undefined ? undefined : JSON.stringify(init.body),
  })

interface Entry {
  employeeId: string
  name: string
  title: string | null
}

/** Polls the directory until `check` holds (the projection is eventually consistent). */
async function directoryWhen(check: (entries: Entry[]) => boolean, timeoutMs = 20_000): Promise<Entry[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const entries = (await (await api('/directory')).json()) as Entry[]
    if (check(entries)) return entries
    if (Date.now() > deadline) throw new Error(`directory never matched; last: ${JSON.stringify(entries)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('demo: HR API → outbox → relay → Kafka → inbox → directory', () => {
  it('reflects create, update and delete in order, and ignores a redelivered event', async () => {
    const created = await api('/employees', {
      method: 'POST',
      body: { email: 'ada@example.com', name: 'Ada Lovelace', title: 'Engineer' },
    })
    expect(created.status).toBe(201)
    const ada = (await created.json()) as { id: string }
    await directoryWhen((d) => d.some((e) => e.employeeId === ada.id && e.title === 'Engineer'))

    const patched = await api(`/employees/${ada.id}`, { method: 'PATCH', body: { title: 'Chief Engineer' } })
    expect(patched.status).toBe(200)
    await directoryWhen((d) => d.some((e) => e.employeeId === ada.id && e.title === 'Chief Engineer'))

    expect((await api(`/employees/${ada.id}`, { method: 'DELETE' })).status).toBe(204)
    await directoryWhen((d) => !d.some((e) => e.employeeId === ada.id))

    // What Kafka got: the three events of Ada, in order, with their ids.
    const messages = await collectMessages(kafka, [topic], { count: 3 })
    expect(messages.map((m) => [m.key, m.headers.eventType])).toEqual([
      [ada.id, 'employee.created'],
      [ada.id, 'employee.updated'],
      [ada.id, 'employee.deleted'],
    ])

    // Redeliver Ada's "created" event as Kafka would after a relay crash: same id.
    const first = messages[0]
    if (!first) throw new Error('no message')
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    await producer.send({
      topic,
      acks: -1,
      messages: [{ key: first.key, value: first.value, headers: first.headers }],
    })
    await producer.disconnect()
    // A later event on the same partition: once it shows, the duplicate has been consumed.
    const grace = (await (
      await api('/employees', { method: 'POST', body: { email: 'grace@example.com', name: 'Grace Hopper' } })
    ).json()) as { id: string }
    const directory = await directoryWhen((d) => d.some((e) => e.employeeId === grace.id))
    expect(directory.map((e) => e.employeeId)).toEqual([grace.id])
    const inbox = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM outbox_inbox WHERE event_id = $1',
      [first.headers.id],
    )
    expect(inbox.rows[0]?.n).toBe(1)
  })

  it('mounts the relay at /outbox behind its bearer token', async () => {
    const open = await fetch(`${demo.url}/outbox/stats`)
    expect(open.status).toBe(401)
    const drain = await fetch(`${demo.url}/outbox/drain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${RELAY_TOKEN}` },
    })
    expect(drain.status).toBe(200)
    expect(await drain.json()).toMatchObject({ published: expect.any(Number), remaining: expect.any(Number) })
    const health = await fetch(`${demo.url}/outbox/health`)
    expect(health.status).toBe(200)
  })

  it('answers 400 naming the fields of a bad body, and 404 for an unknown employee', async () => {
    const bad = await api('/employees', { method: 'POST', body: { email: 'not-an-email', name: '' } })
    expect(bad.status).toBe(400)
    const body = (await bad.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('INVALID_BODY')
    expect(body.error.message).toMatch(/email/)
    expect(body.error.message).toMatch(/name/)
    const missing = await api(`/employees/${randomUUID()}`, { method: 'PATCH', body: { title: 'x' } })
    expect(missing.status).toBe(404)
    const before = await db.pool.query('SELECT count(*)::int AS n FROM outbox_event')
    const badId = await api('/employees/not-a-uuid', { method: 'DELETE' })
    expect(badId.status).toBe(400)
    const after = await db.pool.query('SELECT count(*)::int AS n FROM outbox_event')
    expect(after.rows[0].n).toBe(before.rows[0].n)
  })

  it('lists the relay endpoints at GET /outbox, as the banner says', async () => {
    const index = await fetch(`${demo.url}/outbox`)
    expect(index.status).toBe(200)
    expect(await index.json()).toMatchObject({ drain: 'POST /outbox/drain', stats: 'GET /outbox/stats' })
  })

  it('speaks one error-code style, the relay mounted at /outbox included', async () => {
    const email = `dup-${randomUUID()}@example.com`
    expect((await api('/employees', { method: 'POST', body: { email, name: 'Dup' } })).status).toBe(201)
    const malformed = fetch(`${demo.url}/employees`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"email":',
    })
    const cases: [string, Promise<Response>, number, string][] = [
      ['a bad body', api('/employees', { method: 'POST', body: { name: 1 } }), 400, 'INVALID_BODY'],
      ['malformed JSON', malformed, 400, 'INVALID_JSON'],
      ['a bad id', api('/employees/nope', { method: 'DELETE' }), 400, 'INVALID_PARAM'],
      ['an unknown employee', api(`/employees/${randomUUID()}`, { method: 'DELETE' }), 404, 'NOT_FOUND'],
      ['a taken email', api('/employees', { method: 'POST', body: { email, name: 'Dup' } }), 409, 'CONFLICT'],
      ['an unknown route', api('/nope'), 404, 'NOT_FOUND'],
      ['no relay token', fetch(`${demo.url}/outbox/stats`), 401, 'UNAUTHORIZED'],
    ]
    for (const [what, response, status, code] of cases) {
      const res = await response
      const body = (await res.json()) as { error: { code: string; message: string } }
      expect([what, res.status, body.error.code]).toEqual([what, status, code])
      expect(body.error.code, what).toMatch(/^[A-Z]+(_[A-Z]+)*$/)
      expect(body.error.message, what).toEqual(expect.any(String))
    }
  })
})
