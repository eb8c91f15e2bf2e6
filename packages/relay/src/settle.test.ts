import { describe, expect, it } from 'vitest'
import { RelayError } from './errors.js'
import type { OutboxMessage } from './message.js'
import { settleBatch } from './settle.js'

const msg = (id: string, key: string, topic = 't'): OutboxMessage => ({
  id,
  key,
  topic,
  value: '{}',
  headers: { id },
})

/** A fake broker: rejects any call containing a poison id, records what it accepted. */
function fakeBroker(
  poison: Set<string>,
  retriableOnCall?: number,
  code:
    | 'RELAY_PUBLISH_RETRIABLE'
    | 'RELAY_PUBLISH_REJECTED'
    | 'RELAY_PUBLISH_TIMEOUT' = 'RELAY_PUBLISH_RETRIABLE',
) {
  const accepted: string[] = []
  const calls: string[][] = []
  const publish = async (messages: OutboxMessage[]) => {
    calls.push(messages.map((m) => m.id))
    if (retriableOnCall === calls.length) throw new RelayError(code, 'leader moved')
    if (messages.some((m) => poison.has(m.id)))
      throw new RelayError('RELAY_PUBLISH_PERMANENT', 'MESSAGE_TOO_LARGE')
    accepted.push(...messages.map((m) => m.id))
  }
  return { publish, accepted, calls }
}

const kinds = (outcomes: Map<string, { kind: string; permanent?: boolean }>) =>
  Object.fromEntries(
    [...outcomes].map(([id, o]) => [id, o.kind === 'failed' ? (o.permanent ? 'dead' : 'retry') : o.kind]),
  )

describe('settleBatch', () => {
  it('Should publish a healthy batch in one call', async () => {
    const broker = fakeBroker(new Set())
    const batch = [msg('1', 'a'), msg('2', 'b'), msg('3', 'a')]
    const result = await settleBatch(batch, broker.publish, { blockOnDead: true })
    expect(result.sends).toBe(1)
    expect(kinds(result.outcomes)).toEqual({ 1: 'published', 2: 'published', 3: 'published' })
  })

  it('Should bisect down to the poison row and hold later rows of its key (block-key)', async () => {
    const broker = fakeBroker(new Set(['4']))
    const batch = ['a', 'b', 'c', 'p', 'd', 'p', 'e', 'f'].map((k, i) => msg(String(i + 1), k))
    const result = await settleBatch(batch, broker.publish, { blockOnDead: true })
    expect(kinds(result.outcomes)).toEqual({
      1: 'published',
      2: 'published',
      3: 'published',
      4: 'dead',
      5: 'published',
      6: 'held',
      7: 'published',
      8: 'published',
    })
    // in-order: the accepted ids never run backwards
    expect(broker.accepted).toEqual(['1', '2', '3', '5', '7', '8'])
    expect(result.retriableFailure).toBe(false)
  })

  it("Should let later rows of the poison key through with 'continue'", async () => {
    const broker = fakeBroker(new Set(['1']))
    const batch = [msg('1', 'p'), msg('2', 'p'), msg('3', 'x')]
    const result = await settleBatch(batch, broker.publish, { blockOnDead: false })
    expect(kinds(result.outcomes)).toEqual({ 1: 'dead', 2: 'published', 3: 'published' })
  })

  it('Should find several poison rows', async () => {
    const broker = fakeBroker(new Set(['2', '7']))
    const batch = Array.from({ length: 9 }, (_, i) => msg(String(i + 1), `k${i}`))
    const result = await settleBatch(batch, broker.publish, { blockOnDead: true })
    const dead = [...result.outcomes].filter(([, o]) => o.kind === 'failed').map(([id]) => id)
    expect(dead).toEqual(['2', '7'])
    expect(broker.accepted).toHaveLength(7)
  })

  it("Should fail the whole call on an event's retriable error, and hold what was not tried yet", async () => {
    const all = fakeBroker(new Set(), 1, 'RELAY_PUBLISH_REJECTED')
    const r1 = await settleBatch([msg('1', 'a'), msg('2', 'b')], all.publish, { blockOnDead: true })
    expect(kinds(r1.outcomes)).toEqual({ 1: 'retry', 2: 'retry' })
    expect(r1.retriableFailure).toBe(true)
    expect(r1.infrastructureFailure).toBe(false)

    // poison forces a split; the second half's call fails retriably; nothing after it is tried
    const broker = fakeBroker(new Set(['1']), 3, 'RELAY_PUBLISH_REJECTED')
    const batch = [msg('1', 'a'), msg('2', 'b'), msg('3', 'a'), msg('4', 'c')]
    const r2 = await settleBatch(batch, broker.publish, { blockOnDead: true })
    // calls: [1,2,3,4] permanent → [1,2] permanent → [1] dead… call 3 is [1] → retriable
    expect(broker.calls[0]).toEqual(['1', '2', '3', '4'])
    expect(kinds(r2.outcomes)).toEqual({ 1: 'retry', 2: 'held', 3: 'held', 4: 'held' })
  })

  it('Should defer (no attempt) the rows of a call the broker failed, and hold the rest', async () => {
    const broker = fakeBroker(new Set(['1']), 3)
    const batch = [msg('1', 'a'), msg('2', 'b'), msg('3', 'a'), msg('4', 'c')]
    const result = await settleBatch(batch, broker.publish, { blockOnDead: true })
    expect(kinds(result.outcomes)).toEqual({ 1: 'deferred', 2: 'held', 3: 'held', 4: 'held' })
    expect(result.infrastructureFailure).toBe(true)
  })

  it('Should leave the rows of a timed-out call unsettled (they may still land)', async () => {
    const broker = fakeBroker(new Set(), 1, 'RELAY_PUBLISH_TIMEOUT')
    const result = await settleBatch([msg('1', 'a'), msg('2', 'b')], broker.publish, { blockOnDead: true })
    expect(kinds(result.outcomes)).toEqual({ 1: 'unsettled', 2: 'unsettled' })
    expect(result.infrastructureFailure).toBe(true)
  })

  it('Should hold every row not sent once stopBefore says stop', async () => {
    const broker = fakeBroker(new Set(['1']))
    let calls = 0
    const batch = [msg('1', 'a'), msg('2', 'b'), msg('3', 'c')]
    // the first call goes out (and fails for the poison row); then the drain is told to stop
    const result = await settleBatch(batch, broker.publish, {
      blockOnDead: true,
      stopBefore: () => calls++ > 0,
    })
    expect(broker.calls).toEqual([['1', '2', '3']])
    expect(kinds(result.outcomes)).toEqual({ 1: 'held', 2: 'held', 3: 'held' })
  })
})

describe('settleBatch with maxMessageBytes', () => {
  const msg = (id: string, key: string, value: string) => ({ id, topic: 't', key, value, headers: { id } })

  it('fails an oversized row permanently without sending it, and sends the others once', async () => {
    const sent: string[][] = []
    const big = msg('b', 'k2', 'x'.repeat(200))
    const result = await settleBatch(
      [msg('a', 'k1', '{}'), big, msg('c', 'k3', '{}')],
      async (batch) => {
        sent.push(batch.map((m) => m.id))
      },
      { blockOnDead: true, maxMessageBytes: 100 },
    )
    expect(sent).toEqual([['a', 'c']])
    expect(result.sends).toBe(1)
    expect(result.outcomes.get('a')).toEqual({ kind: 'published' })
    expect(result.outcomes.get('c')).toEqual({ kind: 'published' })
    const outcome = result.outcomes.get('b')
    expect(outcome).toMatchObject({ kind: 'failed', permanent: true })
    expect(String((outcome as { error: Error }).error.message)).toMatch(
      /message too large: \d+ bytes .* exceeds maxMessageBytes 100/,
    )
  })

  it('holds later rows of the oversized row key under block-key', async () => {
    const sent: string[] = []
    const result = await settleBatch(
      [msg('a', 'k1', 'x'.repeat(200)), msg('b', 'k1', '{}'), msg('c', 'k2', '{}')],
      async (batch) => {
        sent.push(...batch.map((m) => m.id))
      },
      { blockOnDead: true, maxMessageBytes: 100 },
    )
    expect(sent).toEqual(['c'])
    expect(result.outcomes.get('b')).toEqual({ kind: 'held' })
  })
})
