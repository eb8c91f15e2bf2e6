/**
 * `outbox-relay stream` as real processes: the active streamer is SIGKILLed while writers write;
 * the standby takes over. Nothing may be lost, per-key order must hold, and duplicates may only
 * come from the killed process's in-flight window.
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
function startStreamer(): { child: ChildProcess; output: () => string } {
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
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString()
  })
  children.push(child)
  return { child, output: () => text }
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
    // Duplicates come only from what the killed process had sent but not yet confirmed.
    expect(messages.length - written).toBeLessThanOrEqual(20 * 10)
    const { rows } = await ctx.db.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM outbox_event WHERE status <> 'published'",
    )
    expect(Number(rows[0]?.n)).toBe(0)
  })
})
