/**
 * Shared helpers of the relay's integration tests: a database per test, rows inserted with plain
 * SQL, a real Kafka publisher, and drains repeated until the backlog is gone.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import {
  createTestDatabase,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import type { Kafka } from 'kafkajs'
import type pg from 'pg'
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest'
import {
  type DrainResult,
  type Engine,
  KafkaPublisher,
  type OutboxMessage,
  type Publisher,
} from '../src/index.js'

export const MIGRATIONS = fileURLToPath(new URL('../../extension/prisma/migrations', import.meta.url))

export async function testDatabase(): Promise<TestDatabase> {
  return createTestDatabase({ migrations: [MIGRATIONS], prefix: 'relay_test' })
}

export interface NewRow {
  topic: string
  key: string
  type?: string
  aggregateType?: string
  payload?: unknown
  headers?: Record<string, unknown>
  id?: string
}

/** Inserts rows in array order (so `seq` follows it) in one statement; returns their ids. */
export async function insertRows(
  db: Pick<pg.Pool, 'query'> | pg.PoolClient,
  rows: NewRow[],
): Promise<string[]> {
  const ids = rows.map((r) => r.id ?? randomUUID())
  if (rows.length === 0) return ids
  await db.query(
    `INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, topic, headers)
     SELECT id, agg, key, type, payload::jsonb, topic, headers::jsonb
     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
       WITH ORDINALITY AS r(id, agg, key, type, payload, topic, headers, ord)
     ORDER BY ord`,
    [
      ids,
      rows.map((r) => r.aggregateType ?? 'thing'),
      rows.map((r) => r.key),
      rows.map((r) => r.type ?? 'thing.updated'),
      rows.map((r) => JSON.stringify(r.payload ?? {})),
      rows.map((r) => r.topic),
      rows.map((r) => JSON.stringify(r.headers ?? {})),
    ],
  )
  return ids
}

/** A connected KafkaPublisher on the test broker; `disconnect()` it in afterAll. */
/**
 * The hooks most integration files share: one connected publisher for the file, a fresh
 * database for each test. The callbacks hand them to the file's own variables.
 * @example
 * let publisher: KafkaPublisher
 * let db: TestDatabase
 * useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })
 */
export function useRelayServices(
  kafka: Kafka,
  use: { publisher(publisher: KafkaPublisher): void; db(db: TestDatabase): void },
): void {
  let publisher: KafkaPublisher | undefined
  let db: TestDatabase | undefined
  beforeAll(async () => {
    publisher = await kafkaPublisher(kafka)
    use.publisher(publisher)
  })
  afterAll(async () => {
    await publisher?.disconnect()
  })
  beforeEach(async () => {
    db = await testDatabase()
    use.db(db)
  })
  afterEach(async () => {
    await db?.drop()
  })
}

export async function kafkaPublisher(kafka: Kafka = testKafka('outbox-relay-test')): Promise<KafkaPublisher> {
  const publisher = new KafkaPublisher({ kafka, numPartitions: 3, replicationFactor: 1 })
  await publisher.connect()
  return publisher
}

/** A publisher that runs `before`/`after` around the real one (fault injection). */
export function wrapPublisher(
  inner: Publisher,
  hooks: {
    before?(m: OutboxMessage[]): Promise<void> | void
    after?(m: OutboxMessage[]): Promise<void> | void
  },
): Publisher {
  return {
    connect: () => inner.connect(),
    disconnect: () => inner.disconnect(),
    async publish(messages) {
      await hooks.before?.(messages)
      await inner.publish(messages)
      await hooks.after?.(messages)
    },
  }
}

/** Drains with all engines at once, repeatedly, until no due row is left (or the timeout). */
export async function drainAll(engines: Engine[], timeoutMs = 30_000): Promise<DrainResult[]> {
  const deadline = Date.now() + timeoutMs
  const results: DrainResult[] = []
  for (;;) {
    const round = await Promise.all(engines.map((e) => e.drain()))
    results.push(...round)
    if (round.every((r) => r.remaining === 0) || Date.now() > deadline) return results
    await sleep(100)
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A promise with its resolve function, to hold a fake publisher at a point. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

export async function statuses(pool: pg.Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; n: string }>(
    'SELECT status, count(*) AS n FROM outbox_event GROUP BY status',
  )
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]))
}

/**
 * Waits until every pending row is claimable as far as open transactions go: the claim only takes
 * rows whose writing transaction is older than every transaction still running on the cluster,
 * and other test suites sharing this PostgreSQL server may hold one open for a moment.
 */
export async function waitClaimable(pool: {
  query(text: string): Promise<{ rows: Array<{ ok: boolean | null }> }>
}) {
  const deadline = Date.now() + 30_000
  for (;;) {
    const { rows } = await pool.query(
      "SELECT bool_and(txid < pg_snapshot_xmin(pg_current_snapshot())) AS ok FROM outbox_event WHERE status = 'pending'",
    )
    if (rows[0]?.ok !== false || Date.now() > deadline) return
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * A fresh topic with `count` rows on `keys` keys (`k0`, `k1`, …, round robin), all claimable.
 * @returns the topic
 */
export async function backlog(
  kafka: Kafka,
  pool: pg.Pool,
  options: { prefix: string; count: number; keys: number; partitions?: number },
): Promise<string> {
  const topic = uniqueTopic(options.prefix)
  await createTopics(kafka, [topic], options.partitions ?? 3)
  await insertRows(
    pool,
    Array.from({ length: options.count }, (_, i) => ({ topic, key: `k${i % options.keys}` })),
  )
  await waitClaimable(pool)
  return topic
}

/** A TCP listener that accepts connections and never answers: a silent database or broker. */
export async function silentListener(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/**
 * Asserts that, for every key of `rows`, the messages carry the rows' `payload.i` in the order the
 * rows were inserted (each row's payload is `{ i: its index }`).
 */
export function expectInsertOrderPerKey(
  messages: { key: string | null; value: string | Buffer | null }[],
  rows: NewRow[],
): void {
  for (const key of new Set(rows.map((r) => r.key))) {
    const seen = messages.filter((m) => m.key === key).map((m) => JSON.parse(String(m.value)).i)
    expect(seen, `order of key ${key}`).toEqual(rows.flatMap((r, i) => (r.key === key ? [i] : [])))
  }
}

/**
 * `values` as the argument list of an SQL `EXECUTE`: untyped literals, each taking the type of its
 * parameter ($1::uuid[], $2::int, …).
 */
export function sqlLiterals(client: pg.PoolClient, values: unknown[]): string {
  const literal = (v: unknown): string =>
    v === null || v === undefined
      ? 'NULL'
      : Array.isArray(v)
        ? client.escapeLiteral(
            `{${v.map((e) => `"${String(e).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`,
          )
        : client.escapeLiteral(String(v))
  return values.map(literal).join(', ')
}

/**
 * EXPLAIN (ANALYZE, BUFFERS) of one statement, inside the caller's transaction, with the plan
 * PostgreSQL makes for these values (`custom`) or the one plan for every value that a statement
 * the relay prepares settles on after a few runs (`generic`). Prepared as the relay's named
 * statements are: an unnamed statement always gets a custom plan.
 */
export async function explainPrepared(
  client: pg.PoolClient,
  statement: { text: string; values: unknown[] },
  mode: 'custom' | 'generic',
  // biome-ignore lint/suspicious/noExplicitAny: EXPLAIN's JSON
): Promise<any[]> {
  await client.query(`SET LOCAL plan_cache_mode = force_${mode}_plan`)
  await client.query(`PREPARE explained AS ${statement.text}`)
  try {
    const { rows } = await client.query(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE explained(${sqlLiterals(client, statement.values)})`,
    )
    return rows
  } finally {
    await client.query('DEALLOCATE explained')
  }
}

/** Every scan of an EXPLAIN (FORMAT JSON) plan: `Seq Scan on <table>`, `Index Scan using <index>`, `Function Scan`, … */
// biome-ignore lint/suspicious/noExplicitAny: EXPLAIN's JSON
export function scansOf(node: any): string[] {
  const type: string = node['Node Type']
  const own = type.endsWith('Scan')
    ? [
        node['Index Name']
          ? `${type} using ${node['Index Name']}`
          : node['Relation Name']
            ? `${type} on ${node['Relation Name']}`
            : type,
      ]
    : []
  // biome-ignore lint/suspicious/noExplicitAny: EXPLAIN's JSON
  return [...own, ...(node.Plans ?? []).flatMap((child: any) => scansOf(child))]
}

/** A database of its own whose outbox table is never analyzed (autovacuum off), as on a fresh deploy. */
export async function unanalyzedDatabase(): Promise<TestDatabase> {
  const db = await testDatabase()
  await db.pool.query('ALTER TABLE outbox_event SET (autovacuum_enabled = false)')
  return db
}

/** Inserts `count` rows of topic `t` over 500 keys, 2,000 per statement; returns their ids in order. */
export async function insertMany(pool: pg.Pool, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID())
  for (let i = 0; i < ids.length; i += 2_000)
    await insertRows(
      pool,
      ids.slice(i, i + 2_000).map((id, j) => ({ id, topic: 't', key: `k${j % 500}` })),
    )
  return ids
}
