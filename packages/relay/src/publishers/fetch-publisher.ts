/**
 * A publisher on `fetch`: produces through the Kafka REST API v3 (Confluent REST Proxy, or
 * Confluent Cloud's REST endpoint). No sockets, no Node built-ins, so the relay runs on edge
 * runtimes (Cloudflare Workers, Vercel Edge, Deno, Bun) together with `createRelayApp`.
 * @module
 */
import { RelayError } from '../errors.js'
import type { OutboxMessage } from '../message.js'
import type { Publisher } from '../publisher.js'

/**
 * Options of {@link FetchPublisher}.
 *
 * @param baseUrl - REST endpoint up to (not including) `/v3`: `http://rest-proxy:8082` for
 *   Confluent REST Proxy, `https://pkc-xxxx.region.provider.confluent.cloud:443/kafka` for Confluent Cloud
 * @param clusterId - the Kafka cluster id (`GET {baseUrl}/v3/clusters` lists it)
 * @param [headers] - extra request headers, e.g. `{ Authorization: 'Basic ' + btoa('KEY:SECRET') }`
 * @param [concurrency=8] - keys produced in parallel (records of one key are always sequential)
 * @param [timeoutMs=30000] - per request
 * @param [fetch=globalThis.fetch] - the fetch implementation (tests, proxies)
 */
export interface FetchPublisherOptions {
  baseUrl: string
  clusterId: string
  headers?: Record<string, string> | undefined
  concurrency?: number | undefined
  timeoutMs?: number | undefined
  fetch?: typeof fetch | undefined
}

/** HTTP statuses that mean the record itself can never be produced: the row goes dead. */
const PERMANENT_STATUSES: ReadonlySet<number> = new Set([400, 413, 422])
/** Refusals of the event's own topic (not authorised): an attempt each, dead after `maxAttempts`. */
const REJECTED_STATUSES: ReadonlySet<number> = new Set([403])

const encoder = new TextEncoder()

/** Base64 of the UTF-8 bytes of `text`, without Node's Buffer. */
export function base64Utf8(text: string): string {
  const bytes = encoder.encode(text)
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

/** The v3 produce request body of one message (key STRING, value BINARY = the exact JSON bytes). @internal */
export function toProduceRecord(message: OutboxMessage): Record<string, unknown> {
  return {
    key: { type: 'STRING', data: message.key },
    value: { type: 'BINARY', data: base64Utf8(message.value) },
    headers: Object.entries(message.headers).map(([name, value]) => ({ name, value: base64Utf8(value) })),
  }
}

/**
 * Produces each message with one `POST {baseUrl}/v3/clusters/{clusterId}/topics/{topic}/records`
 * (the non-streaming form: one record, one delivery report). Deliberately simple:
 *
 * - **Order**: messages of one topic + key are sent one after another, each awaited, so the
 *   proxy's producer sees them in order; different keys go in parallel (`concurrency`). The key
 *   is sent as a STRING, so the proxy's default partitioner (murmur2, like `KafkaPublisher`)
 *   puts a key on the same partition as the kafkajs publisher does.
 * - **Value**: sent as BINARY (base64 of the payload's UTF-8 JSON text), so consumers get the
 *   exact bytes the row holds; headers are base64 as the API requires.
 * - **Errors**: a response other than 2xx, or a delivery report whose `error_code` is not 200,
 *   fails the whole `publish` call. 400, 413 and 422 are permanent (`RELAY_PUBLISH_PERMANENT`:
 *   the engine bisects the batch and only the bad record goes dead); everything else (401/403,
 *   404 unknown topic, 408, 429, 5xx, network errors, timeouts) is retriable.
 * - **At-least-once**: when a call fails half way, records already produced are produced again
 *   on retry; consumers deduplicate on the `id` header as with any publisher.
 * - Topics are not created: create them up front (or enable auto-creation on the cluster).
 *
 * @example
 * const publisher = new FetchPublisher({
 *   baseUrl: 'https://pkc-xxxx.eu-west-1.aws.confluent.cloud:443/kafka',
 *   clusterId: 'lkc-abc123',
 *   headers: { Authorization: `Basic ${btoa(`${env.KAFKA_API_KEY}:${env.KAFKA_API_SECRET}`)}` },
 * })
 */
export class FetchPublisher implements Publisher {
  private readonly baseUrl: string
  private readonly fetch: typeof fetch
  private readonly concurrency: number
  private readonly timeoutMs: number

  constructor(private readonly options: FetchPublisherOptions) {
    const fail = (message: string): never => {
      throw new RelayError('RELAY_INVALID_OPTIONS', `invalid FetchPublisher options: ${message}`)
    }
    let url: URL | undefined
    try {
      url = new URL(options.baseUrl)
    } catch {
      fail('baseUrl must be an absolute http(s) URL')
    }
    if (url && url.protocol !== 'http:' && url.protocol !== 'https:')
      fail('baseUrl must be an absolute http(s) URL')
    if (typeof options.clusterId !== 'string' || options.clusterId.length === 0) fail('clusterId is required')
    this.concurrency = options.concurrency ?? 8
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1)
      fail('concurrency must be a positive integer')
    this.timeoutMs = options.timeoutMs ?? 30_000
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs < 1) fail('timeoutMs must be a positive integer')
    const f = options.fetch ?? globalThis.fetch
    if (typeof f !== 'function') fail('no fetch implementation available: pass options.fetch')
    this.fetch = f
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
  }

  /** Nothing to open: HTTP is connectionless here. */
  async connect(): Promise<void> {}

  async disconnect(): Promise<void> {}

  /** `GET {baseUrl}/v3/clusters/{clusterId}`: resolves when the REST endpoint answers 2xx (for `checkBroker`). */
  async health(): Promise<void> {
    const res = await this.request(
      `${this.baseUrl}/v3/clusters/${encodeURIComponent(this.options.clusterId)}`,
      {
        method: 'GET',
      },
    )
    await res.body?.cancel()
    if (!res.ok) throw new Error(`Kafka REST endpoint answered ${res.status}`)
  }

  async publish(messages: OutboxMessage[]): Promise<void> {
    if (messages.length === 0) return
    // Group by topic + key, keeping batch order inside each group.
    const groups = new Map<string, OutboxMessage[]>()
    for (const m of messages) {
      const id = JSON.stringify([m.topic, m.key])
      let list = groups.get(id)
      if (!list) {
        list = []
        groups.set(id, list)
      }
      list.push(m)
    }
    const queue = [...groups.values()]
    let failure: unknown
    const worker = async () => {
      for (;;) {
        const group = queue.shift()
        if (!group || failure !== undefined) return
        try {
          for (const m of group) await this.produce(m)
        } catch (error) {
          failure ??= error
          return
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.concurrency, queue.length) }, worker))
    if (failure !== undefined) throw failure
  }

  private request(url: string, init: RequestInit): Promise<Response> {
    return this.fetch(url, {
      ...init,
      headers: { Accept: 'application/json', ...init.headers, ...this.options.headers },
      signal: AbortSignal.timeout(this.timeoutMs),
    })
  }

  private async produce(message: OutboxMessage): Promise<void> {
    const url = `${this.baseUrl}/v3/clusters/${encodeURIComponent(this.options.clusterId)}/topics/${encodeURIComponent(message.topic)}/records`
    let res: Response
    try {
      res = await this.request(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(toProduceRecord(message)),
      })
    } catch (error) {
      throw new RelayError(
        'RELAY_PUBLISH_RETRIABLE',
        `producing to ${message.topic} failed: ${(error as Error)?.message ?? error}`,
        {
          cause: error,
        },
      )
    }
    let report: { error_code?: unknown; message?: unknown } | undefined
    try {
      report = (await res.json()) as typeof report
    } catch {
      report = undefined
    }
    const code = typeof report?.error_code === 'number' ? report.error_code : undefined
    if (res.ok && (code === undefined || code === 200)) return
    // A delivery report's error_code is the HTTP-like status (or status * 100 + detail, e.g. 40403).
    const status = res.ok && code !== undefined ? (code >= 1000 ? Math.floor(code / 100) : code) : res.status
    const detail = typeof report?.message === 'string' ? `: ${report.message.slice(0, 500)}` : ''
    const text = `producing to ${message.topic} failed with ${status}${code !== undefined && code !== status ? ` (error_code ${code})` : ''}${detail}`
    throw new RelayError(
      PERMANENT_STATUSES.has(status)
        ? 'RELAY_PUBLISH_PERMANENT'
        : REJECTED_STATUSES.has(status)
          ? 'RELAY_PUBLISH_REJECTED'
          : 'RELAY_PUBLISH_RETRIABLE',
      text,
    )
  }
}
