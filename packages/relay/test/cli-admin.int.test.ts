/**
 * The operator commands of `outbox-relay` as child processes against real PostgreSQL: `stats`,
 * `dead list|show|retry|discard`, `purge`, and the retention schedule of `watch` (with Kafka).
 */
import { kafkaBrokers, type TestDatabase } from '@prisma-outbox/devkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { start } from './cli-process.js'
import { insertRows, statuses, testDatabase } from './helpers.js'

let db: TestDatabase

beforeEach(async () => {
  db = await testDatabase()
})
afterEach(async () => {
  await db.drop()
})

/** Runs the CLI with only DATABASE_URL (no Kafka: these commands never need it). */
const cli = async (args: string[], extra: Record<string, string> = {}, options: { bin?: boolean } = {}) => {
  const r = await start(args, { DATABASE_URL: db.url, ...extra }, options).done
  return { ...r, json: () => JSON.parse(r.stdout) }
}

async function deadRows(topic: string, n: number, payload: unknown = {}): Promise<string[]> {
  const ids = await insertRows(
    db.pool,
    Array.from({ length: n }, (_, i) => ({ topic, key: `k${i}`, payload })),
  )
  await db.pool.query(
    "UPDATE outbox_event SET status = 'dead', attempts = 10, last_error = 'boom' WHERE id = ANY($1)",
    [ids],
  )
  return ids
}

describe('outbox-relay operator commands', () => {
  it('Should print stats as JSON with only DATABASE_URL set (the bin itself)', async () => {
    await insertRows(db.pool, [
      { topic: 'a', key: '1' },
      { topic: 'a', key: '2' },
    ])
    await deadRows('b', 1)
    const r = await cli(['stats'], {}, { bin: true })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.json()).toMatchObject({
      pending: 2,
      dead: 1,
      topics: [
        { topic: 'a', pending: 2 },
        { topic: 'b', dead: 1 },
      ],
    })
  })

  it('Should list dead rows without payloads, page with --cursor, show one with its payload', async () => {
    const ids = await deadRows('orders', 3, { big: 'x'.repeat(5000) })
    const first = await cli(['dead', 'list', '--limit', '2'])
    expect(first.code).toBe(0)
    const page = first.json()
    expect(page.items.map((i: { id: string }) => i.id)).toEqual(ids.slice(0, 2))
    expect(page.items[0].payload).toBeUndefined()
    expect(page.items[0].payloadBytes).toBeGreaterThan(5000)
    const second = (
      await cli(['dead', 'list', '--limit', '2', '--cursor', page.nextCursor, '--payload'])
    ).json()
    expect(second).toMatchObject({
      items: [{ id: ids[2], payload: { big: 'x'.repeat(5000) } }],
      nextCursor: null,
    })
    const bytes = (await cli(['dead', 'list', '--payload', '--max-bytes', '1024'])).json()
    expect(bytes.items).toHaveLength(1)
    const shown = await cli(['dead', 'show', ids[1] as string])
    expect(shown.json()).toMatchObject({ id: ids[1], lastError: 'boom', payload: { big: 'x'.repeat(5000) } })
    const missing = await cli(['dead', 'show', '0190a0b0-0000-7000-8000-000000000009'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/no dead row with id 0190a0b0-0000-7000-8000-000000000009/)
  })

  it('Should retry by id and by topic, and discard by topic only with --yes', async () => {
    const orders = await deadRows('orders', 2)
    await deadRows('billing', 2)
    expect((await cli(['dead', 'retry', orders[0] as string])).json()).toEqual({ retried: 1 })
    const refused = await cli(['dead', 'discard', '--topic', 'billing'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/add --yes to confirm/)
    expect(await statuses(db.pool)).toEqual({ pending: 1, dead: 3 })
    expect((await cli(['dead', 'discard', '--topic', 'billing', '--yes'])).json()).toEqual({ discarded: 2 })
    expect((await cli(['dead', 'retry', '--all', '--yes'])).json()).toEqual({ retried: 1 })
    expect(await statuses(db.pool)).toEqual({ pending: 2 })
  })

  it('Should purge old published rows, count them first with --dry-run, and keep everything else', async () => {
    const ids = await insertRows(
      db.pool,
      Array.from({ length: 30 }, (_, i) => ({ topic: 'p', key: `k${i}` })),
    )
    await db.pool.query(
      "UPDATE outbox_event SET status = 'published', published_at = now() - interval '3 days' WHERE id = ANY($1)",
      [ids.slice(0, 25)],
    )
    await deadRows('d', 2)
    await db.pool.query(
      "UPDATE outbox_event SET available_at = now() - interval '40 days' WHERE status = 'dead'",
    )
    const dry = await cli(['purge', '--older-than', '2d', '--dry-run'])
    expect(dry.json()).toMatchObject({ published: 25, dead: 0, dryRun: true })
    expect(await statuses(db.pool)).toEqual({ published: 25, pending: 5, dead: 2 })
    // RELAY_RETENTION (7d) keeps them; the flag decides.
    expect((await cli(['purge'], { RELAY_RETENTION_BATCH_SIZE: '10' })).json()).toMatchObject({
      published: 0,
    })
    const r = await cli(['purge', '--older-than', '2d'], { RELAY_RETENTION_BATCH_SIZE: '10' })
    expect(r.json()).toEqual({ published: 25, dead: 0, batches: 3, busy: false, more: false, dryRun: false })
    expect(await statuses(db.pool)).toEqual({ pending: 5, dead: 2 })
    const dead = await cli(['purge'], { RELAY_DEAD_RETENTION: '30d' })
    expect(dead.json()).toMatchObject({ published: 0, dead: 2 })
    expect(await statuses(db.pool)).toEqual({ pending: 5 })
  })

  it('Should exit 2 naming a bad retention variable, and 1 when the database is unreachable', async () => {
    const bad = await cli(['purge'], { RELAY_RETENTION: 'weekly' })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/RELAY_RETENTION: "weekly" is not a duration/)
    const down = await start(['stats'], { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/nope' }).done
    expect(down.code).toBe(1)
    expect(down.stderr).toMatch(/stats failed: .*(ECONNREFUSED|connect)/)
  })

  it('Should purge old published rows by itself while watch runs', async () => {
    const ids = await insertRows(
      db.pool,
      Array.from({ length: 12 }, (_, i) => ({ topic: 'w', key: `k${i}` })),
    )
    await db.pool.query(
      "UPDATE outbox_event SET status = 'published', published_at = now() - interval '2 hours' WHERE id = ANY($1)",
      [ids],
    )
    const { child, done } = start(['watch'], {
      DATABASE_URL: db.url,
      KAFKA_BROKERS: kafkaBrokers().join(','),
      RELAY_RETENTION: '1h',
      RELAY_RETENTION_INTERVAL: '1s',
      RELAY_RETENTION_BATCH_SIZE: '5',
    })
    let seen = ''
    child.stderr?.on('data', (d: Buffer) => {
      seen += d.toString()
    })
    try {
      const deadline = Date.now() + 20_000
      while (!/purged 12 published and 0 dead rows/.test(seen) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50))
      expect(seen).toMatch(/retention: published rows deleted after 1h, dead rows kept/)
      expect(seen).toMatch(/purged 12 published and 0 dead rows/)
      expect(await statuses(db.pool)).toEqual({})
    } finally {
      child.kill('SIGTERM')
    }
    expect((await done).code).toBe(0)
  })
})
