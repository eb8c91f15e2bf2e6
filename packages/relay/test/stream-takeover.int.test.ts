/**
 * `outbox-relay stream` as real processes: the active streamer is SIGKILLed (or frozen with
 * SIGSTOP past wal_sender_timeout) while writers write; the standby takes over. Nothing may be
 * lost, per-key order must hold, duplicates may only come from the killed process's in-flight
 * window, and a frozen streamer that wakes up publishes nothing and stands by.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { collectMessages, kafkaBrokers, testKafka, uniqueTopic } from '@prisma-outbox/devkit'
import { afterEach, describe, expect, it } from 'vitest'
import { insertRows, statuses } from './helpers.js'
import { useStreamDatabase, waitFor } from './stream-helpers.js'

const kafka = testKafka('outbox-stream-takeover-test')
const ctx = useStreamDatabase()
const CHILD = fileURLToPath(new URL('./stream-child.ts', import.meta.url))
const children: ChildProcess[] = []

afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/** Starts `outbox-relay stream`; `output` collects its stderr. */
function startStreamer(env: Record<string, string> = {}): { child: ChildProcess; output: () => string } {
  let text = ''
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, 'stream'], {
    env: {
      ...process.env,
      DATABASE_URL: ctx.db.url,
      KAFKA_BROKERS: kafkaBrokers().join(','),
      KAFKA_TOPIC_PARTITIONS: '3',
      STREAM_SLOT: ctx.slot,
      STREAM_BATCH_SIZE: '20',
      STREAM_STANDBY_RETRY_MS: '100',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString()
  })
  children.push(child)
  return { child, output: () => text }
}

/** Every message of `topic` read back; asserts each id arrived and each key's first copies are in order. */
async function expectDelivered(topic: string, keys: number, transactions: number) {
  const written = keys * transactions
  const messages = await collectMessages(kafka, [topic], { count: written, settleMs: 2_000 })
  const firstSeen = new Map<string, number[]>()
  const ids = new Set<string>()
  for (const m of messages) {
    const id = m.headers.id as string
    if (ids.has(id)) continue
    ids.add(id)
    const list = firstSeen.get(m.key ?? '') ?? []
    list.push((JSON.parse(m.value ?? '{}') as { n: number }).n)
    firstSeen.set(m.key ?? '', list)
  }
  expect(ids.size).toBe(written)
  const expected = Array.from({ length: transactions }, (_, i) => i)
  for (let k = 0; k < keys; k++) expect(firstSeen.get(`k${k}`), `k${k}`).toEqual(expected)
  return messages
}

describe('stream relay processes', () => {
  it('loses nothing and keeps per-key order when the active streamer is SIGKILLed and the standby takes over', async () => {
    const topic = uniqueTopic('stream-kill')
    const a = startStreamer()
    await waitFor(() => a.output().includes('stream active'), 'the first streamer to be active', 60_000)
    const b = startStreamer()
    await waitFor(() => b.output().includes('stream standby'), 'the second streamer to stand by', 60_000)

    const keys = 5
    const transactions = 120
    let written = 0
    const write = async (tx: number) => {
      await insertRows(
        ctx.db.pool,
        Array.from({ length: keys }, (_, k) => ({ topic, key: `k${k}`, payload: { n: tx } })),
      )
      written += keys
    }
    // First half: the active streamer is publishing.
    for (let tx = 0; tx < transactions / 2; tx++) await write(tx)
    await waitFor(
      async () => ((await statuses(ctx.db.pool)).published ?? 0) >= 100,
      'the active streamer to publish',
    )
    // Second half: killed while events stream in.
    for (let tx = transactions / 2; tx < transactions; tx++) {
      await write(tx)
      if (tx === transactions / 2 + 5) a.child.kill('SIGKILL')
    }
    await waitFor(() => b.output().includes('stream active'), 'the standby to take over', 60_000)
    await waitFor(
      async () => ((await statuses(ctx.db.pool)).published ?? 0) === written,
      'every row published',
      60_000,
    )

    const messages = await expectDelivered(topic, keys, transactions)
    // Duplicates come only from what the killed process had sent but not yet confirmed.
    expect(messages.length - written).toBeLessThanOrEqual(20 * 10)
    const { rows } = await ctx.db.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM outbox_event WHERE status <> 'published'",
    )
    expect(Number(rows[0]?.n)).toBe(0)
  })

  it('a streamer frozen past wal_sender_timeout loses the slot to the standby, then wakes up, publishes nothing and stands by', async () => {
    await ctx.db.pool.query("ALTER SYSTEM SET wal_sender_timeout = '2s'")
    await ctx.db.pool.query('SELECT pg_reload_conf()')
    try {
      const topic = uniqueTopic('stream-freeze')
      const a = startStreamer({ STREAM_HTTP_PORT: '0' })
      await waitFor(() => a.output().includes('stream active'), 'the first streamer to be active', 60_000)
      const b = startStreamer()
      await waitFor(() => b.output().includes('stream standby'), 'the second streamer to stand by', 60_000)
      const statsUrl = /stream stats on (http:\/\/\S+)\/stats/.exec(a.output())?.[1]
      expect(statsUrl).toBeDefined()

      const keys = 4
      const transactions = 80
      const write = (tx: number) =>
        insertRows(
          ctx.db.pool,
          Array.from({ length: keys }, (_, k) => ({ topic, key: `k${k}`, payload: { n: tx } })),
        )
      for (let tx = 0; tx < 20; tx++) await write(tx)
      a.child.kill('SIGSTOP')
      // Written while the active streamer is frozen: the standby must take over to publish them.
      for (let tx = 20; tx < 50; tx++) await write(tx)
      await waitFor(() => b.output().includes('stream active'), 'the standby to take over', 60_000)
      const wokeAt = Date.now()
      a.child.kill('SIGCONT')
      for (let tx = 50; tx < transactions; tx++) await write(tx)
      await waitFor(
        () => /stream (standby|connecting)/.test(a.output().split('stream active').at(-1) ?? ''),
        'the woken streamer to give up the slot',
        60_000,
      )
      await waitFor(
        async () => ((await statuses(ctx.db.pool)).published ?? 0) === keys * transactions,
        'every row published',
        60_000,
      )
      await expectDelivered(topic, keys, transactions)
      const stats = (await (await fetch(`${statsUrl}/stats`)).json()) as {
        role: string
        lastPublishAt: string | null
      }
      expect(stats.role).toBe('standby')
      // It handed nothing to Kafka after it woke up.
      expect(Date.parse(stats.lastPublishAt ?? '0')).toBeLessThan(wokeAt)
    } finally {
      await ctx.db.pool.query('ALTER SYSTEM RESET wal_sender_timeout')
      await ctx.db.pool.query('SELECT pg_reload_conf()')
    }
  })
})
