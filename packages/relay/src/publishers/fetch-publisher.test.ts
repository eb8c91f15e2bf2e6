import { describe, expect, it } from 'vitest'
import { RelayError } from '../errors.js'
import type { OutboxMessage } from '../message.js'
import { base64Utf8, FetchPublisher, toProduceRecord } from './fetch-publisher.js'

interface Sent {
  url: string
  method: string
  headers: Record<string, string>
  body: Record<string, unknown> | undefined
}

/** A fake REST Proxy: records requests, answers with `respond` (default: a 200 delivery report). */
function fakeFetch(respond?: (sent: Sent, n: number) => Response | Promise<Response>, delayMs = 0) {
  const sent: Sent[] = []
  let inFlight = 0
  let maxInFlight = 0
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const s: Sent = {
      url: String(input),
      method: init?.method ?? 'GET',
      headers: Object.fromEntries(new Headers(init?.headers).entries()),
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
    }
    sent.push(s)
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    try {
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs))
      return respond
        ? await respond(s, sent.length)
        : Response.json({
            error_code: 200,
            cluster_id: 'c1',
            topic_name: 't',
            partition_id: 0,
            offset: sent.length,
          })
    } finally {
      inFlight--
    }
  }) as typeof globalThis.fetch
  return { fetch, sent, maxInFlight: () => maxInFlight }
}

const message = (topic: string, key: string, n: number): OutboxMessage => ({
  id: `id-${n}`,
  topic,
  key,
  value: JSON.stringify({ n, name: 'Zoë ✓', big: 12345678901234567890n.toString() }),
  headers: { id: `id-${n}`, eventType: 'thing.updated', aggregateType: 'thing' },
})

const decode = (b64: string) => new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)))

describe('FetchPublisher', () => {
  it('Should POST one v3 record per message with STRING key, BINARY value and base64 headers', async () => {
    const { fetch, sent } = fakeFetch()
    const publisher = new FetchPublisher({
      baseUrl: 'http://proxy:8082/',
      clusterId: 'lkc-1',
      headers: { Authorization: 'Basic a2V5OnNlY3JldA==' },
      fetch,
    })
    const m = message('orders.v1', 'order/42', 1)
    await publisher.publish([m])
    expect(sent).toHaveLength(1)
    const [s] = sent
    expect(s?.url).toBe('http://proxy:8082/v3/clusters/lkc-1/topics/orders.v1/records')
    expect(s?.method).toBe('POST')
    expect(s?.headers['content-type']).toBe('application/json')
    expect(s?.headers.authorization).toBe('Basic a2V5OnNlY3JldA==')
    expect(s?.body?.key).toEqual({ type: 'STRING', data: 'order/42' })
    const value = s?.body?.value as { type: string; data: string }
    expect(value.type).toBe('BINARY')
    expect(decode(value.data)).toBe(m.value)
    const headers = s?.body?.headers as Array<{ name: string; value: string }>
    expect(Object.fromEntries(headers.map((h) => [h.name, decode(h.value)]))).toEqual(m.headers)
  })

  it('Should keep per-key order and run different keys in parallel up to the concurrency', async () => {
    const { fetch, sent, maxInFlight } = fakeFetch(undefined, 5)
    const publisher = new FetchPublisher({ baseUrl: 'http://proxy', clusterId: 'c', fetch, concurrency: 3 })
    const messages = Array.from({ length: 30 }, (_, i) => message('t', `k${i % 5}`, i))
    await publisher.publish(messages)
    expect(sent).toHaveLength(30)
    expect(maxInFlight()).toBe(3)
    for (let k = 0; k < 5; k++) {
      const order = sent
        .filter((s) => (s.body as { key: { data: string } }).key.data === `k${k}`)
        .map((s) => JSON.parse(decode((s.body as { value: { data: string } }).value.data)).n)
      expect(order).toEqual([...order].sort((a, b) => a - b))
      expect(order).toHaveLength(6)
    }
  })

  it.each([
    [400, 'RELAY_PUBLISH_PERMANENT'],
    [413, 'RELAY_PUBLISH_PERMANENT'],
    [422, 'RELAY_PUBLISH_PERMANENT'],
    [401, 'RELAY_PUBLISH_RETRIABLE'],
    [403, 'RELAY_PUBLISH_REJECTED'],
    [404, 'RELAY_PUBLISH_RETRIABLE'],
    [429, 'RELAY_PUBLISH_RETRIABLE'],
    [500, 'RELAY_PUBLISH_RETRIABLE'],
    [503, 'RELAY_PUBLISH_RETRIABLE'],
  ])('Should classify HTTP %i as %s', async (status, code) => {
    const { fetch } = fakeFetch(() =>
      Response.json({ error_code: status * 100 + 3, message: 'nope' }, { status }),
    )
    const publisher = new FetchPublisher({ baseUrl: 'http://proxy', clusterId: 'c', fetch })
    const error = await publisher.publish([message('t', 'k', 1)]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RelayError)
    expect((error as RelayError).code).toBe(code)
    expect((error as RelayError).message).toMatch(new RegExp(`failed with ${status}.*nope`))
  })

  it('Should fail on a 200 whose delivery report carries an error_code', async () => {
    const { fetch } = fakeFetch(() => Response.json({ error_code: 413, message: 'record too large' }))
    const publisher = new FetchPublisher({ baseUrl: 'http://proxy', clusterId: 'c', fetch })
    await expect(publisher.publish([message('t', 'k', 1)])).rejects.toMatchObject({
      code: 'RELAY_PUBLISH_PERMANENT',
    })
  })

  it('Should treat network errors and timeouts as retriable', async () => {
    const failing = (async () => {
      throw new TypeError('fetch failed')
    }) as unknown as typeof fetch
    const publisher = new FetchPublisher({ baseUrl: 'http://proxy', clusterId: 'c', fetch: failing })
    await expect(publisher.publish([message('t', 'k', 1)])).rejects.toMatchObject({
      code: 'RELAY_PUBLISH_RETRIABLE',
      message: expect.stringMatching(/fetch failed/),
    })
    const hanging = ((_url: string, init: RequestInit) =>
      new Promise((_, reject) =>
        init.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
      )) as unknown as typeof fetch
    const slow = new FetchPublisher({
      baseUrl: 'http://proxy',
      clusterId: 'c',
      fetch: hanging,
      timeoutMs: 20,
    })
    await expect(slow.publish([message('t', 'k', 1)])).rejects.toMatchObject({
      code: 'RELAY_PUBLISH_RETRIABLE',
    })
  })

  it('Should stop a key at its first failure (later records of the key are not sent)', async () => {
    const { fetch, sent } = fakeFetch((_s, n) =>
      n === 1 ? Response.json({ error_code: 500 }, { status: 500 }) : Response.json({ error_code: 200 }),
    )
    const publisher = new FetchPublisher({ baseUrl: 'http://proxy', clusterId: 'c', fetch, concurrency: 1 })
    await expect(publisher.publish([message('t', 'k', 1), message('t', 'k', 2)])).rejects.toThrow()
    expect(sent).toHaveLength(1)
  })

  it('Should check health with GET /v3/clusters/{id}', async () => {
    const { fetch, sent } = fakeFetch((s) =>
      s.url.endsWith('/v3/clusters/c')
        ? Response.json({ cluster_id: 'c' })
        : new Response(null, { status: 404 }),
    )
    await new FetchPublisher({ baseUrl: 'http://proxy', clusterId: 'c', fetch }).health()
    expect(sent[0]?.method).toBe('GET')
    const down = fakeFetch(() => new Response('no', { status: 503 }))
    await expect(
      new FetchPublisher({ baseUrl: 'http://proxy', clusterId: 'c', fetch: down.fetch }).health(),
    ).rejects.toThrow(/503/)
  })

  it('Should validate its options', () => {
    expect(() => new FetchPublisher({ baseUrl: 'proxy:8082', clusterId: 'c' })).toThrowError(/baseUrl/)
    expect(() => new FetchPublisher({ baseUrl: 'ftp://proxy', clusterId: 'c' })).toThrowError(/baseUrl/)
    expect(() => new FetchPublisher({ baseUrl: 'http://proxy', clusterId: '' })).toThrowError(/clusterId/)
    expect(
      () => new FetchPublisher({ baseUrl: 'http://proxy', clusterId: 'c', concurrency: 0 }),
    ).toThrowError(/concurrency/)
  })

  it('Should base64 UTF-8 text like Buffer does', () => {
    for (const text of ['', 'a', 'Zoë ✓ 😀', 'x'.repeat(100_000)])
      expect(base64Utf8(text)).toBe(Buffer.from(text).toString('base64'))
    expect(toProduceRecord(message('t', 'k', 1)).key).toEqual({ type: 'STRING', data: 'k' })
  })
})
