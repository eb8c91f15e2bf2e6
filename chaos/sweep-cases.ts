/**
 * The bad requests of the HTTP API sweep (see sweep.ts), and the {@link Prober} that sends them
 * and judges each answer: a 4xx with a JSON `{ error: { code, message } }`.
 */
import { createHmac } from 'node:crypto'

export interface SweepCase {
  name: string
  status: number
  code: string
  ok: boolean
  note?: string
}

/** The service's bearer token and webhook secret during the sweep. */
export const TOKEN = 'chaos-token-0123456789abcdefghijklmnopqrstuvwxyz'
export const SECRET = 'chaos-secret-0123456789abcdefghijklmnopqrstuvwxyz'

/** The bearer token's header. */
export const auth = { Authorization: `Bearer ${TOKEN}` }
const json = { 'Content-Type': 'application/json' }

function sign(body: string, t = Math.floor(Date.now() / 1000), secret = SECRET) {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`
}

/** An authorised JSON POST of `body`. */
export const post = (body: string, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { ...auth, ...json, ...headers },
  body,
})

/** A JSON POST authorised by a webhook signature only. */
const noAuthPost = (body: string, sig: string) => ({
  method: 'POST',
  headers: { ...json, 'X-Outbox-Signature': sig },
  body,
})

type Init = RequestInit & { duplex?: 'half' }

/** Sends bad requests to the service at `base` and records how each was answered. */
export class Prober {
  readonly cases: SweepCase[] = []
  /** Requests that failed on a socket the server had closed (retried once on a new one). */
  readonly keepAliveResets: string[] = []

  constructor(readonly base: string) {}

  /** Sends one request; the case is ok when it is answered `expected` (a 4xx) with a JSON error. */
  async probe(name: string, path: string, init: Init, expected: number | number[]): Promise<void> {
    let status = 0
    let code = ''
    let ok = false
    let note: string | undefined
    try {
      const res = await this.send(name, path, init)
      status = res.status
      const text = await res.text()
      try {
        const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }
        code = typeof body.error?.code === 'string' ? body.error.code : ''
        const jsonError = code !== '' && typeof body.error?.message === 'string'
        const want = Array.isArray(expected) ? expected : [expected]
        ok = want.includes(status) && status >= 400 && status < 500 && jsonError
        if (!ok) note = text.slice(0, 200)
      } catch {
        note = `not JSON: ${text.slice(0, 120)}`
      }
    } catch (error) {
      note = `request failed: ${(error as Error).message} ${String((error as { cause?: unknown }).cause ?? '')}`
    }
    this.record({ name, status, code, ok, ...(note ? { note } : {}) })
  }

  record(c: SweepCase): void {
    this.cases.push(c)
  }

  private async send(name: string, path: string, init: Init): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, init)
    } catch (error) {
      // The server closes a kept-alive connection after answering 413 to a chunked body it did
      // not read, without saying `Connection: close`; the next request on that socket fails.
      if (!String((error as { cause?: unknown }).cause).includes('other side closed')) throw error
      this.keepAliveResets.push(name)
      return await fetch(`${this.base}${path}`, init)
    }
  }
}

/** Every bad-input case, in order. */
export async function probeAll(p: Prober): Promise<void> {
  await probeMalformedBodies(p)
  await probeOversizedBodies(p)
  await probeDeadLetter(p)
  await probeAuth(p)
  await probeSignatures(p)
  // routing
  await p.probe('unknown path', '/drain/../../etc/passwd', { headers: auth }, 404)
  await p.probe('GET /drain (wrong method)', '/drain', { headers: auth }, [404, 405])
}

/** POST /drain bodies that are not JSON, not an object, or carry wrong, huge or unknown fields. */
async function probeMalformedBodies(p: Prober): Promise<void> {
  // malformed JSON
  await p.probe('drain: malformed JSON', '/drain', post('{"maxEvents":'), 400)
  await p.probe('drain: not an object (array)', '/drain', post('[1,2]'), 400)
  await p.probe('drain: not an object (string)', '/drain', post('"drain"'), 400)
  await p.probe('drain: JSON null', '/drain', post('null'), 400)
  await p.probe('drain: trailing garbage', '/drain', post('{"maxEvents":1}xyz'), 400)
  await p.probe(
    'drain: invalid UTF-8',
    '/drain',
    { ...post(''), body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) },
    400,
  )
  // wrong types
  await p.probe('drain: maxEvents as string', '/drain', post('{"maxEvents":"10"}'), 400)
  await p.probe('drain: budgetMs as boolean', '/drain', post('{"budgetMs":true}'), 400)
  await p.probe('drain: topics as string', '/drain', post('{"topics":"a"}'), 400)
  await p.probe('drain: topics with a number', '/drain', post('{"topics":[1]}'), 400)
  await p.probe('drain: topics empty', '/drain', post('{"topics":[]}'), 400)
  await p.probe(
    'drain: topic name too long',
    '/drain',
    post(JSON.stringify({ topics: ['t'.repeat(250)] })),
    400,
  )
  await p.probe('drain: maxEvents fractional', '/drain', post('{"maxEvents":1.5}'), 400)
  await p.probe('drain: maxEvents zero', '/drain', post('{"maxEvents":0}'), 400)
  await p.probe('drain: budgetMs negative', '/drain', post('{"budgetMs":-1}'), 400)
  // huge numbers
  await p.probe('drain: maxEvents 1e400 (Infinity)', '/drain', post('{"maxEvents":1e400}'), 400)
  await p.probe('drain: maxEvents 2^64', '/drain', post('{"maxEvents":18446744073709551616}'), 400)
  await p.probe('drain: budgetMs 1e30', '/drain', post('{"budgetMs":1e30}'), 400)
  await p.probe('drain: maxEvents 10000001', '/drain', post('{"maxEvents":10000001}'), 400)
  // unknown fields
  await p.probe('drain: unknown field', '/drain', post('{"maxEvents":1,"deleteAll":true}'), 400)
  await p.probe('drain: __proto__ field', '/drain', post('{"__proto__":{"admin":true}}'), 400)
}

/** Bodies over the size limit, with a Content-Length and chunked. */
async function probeOversizedBodies(p: Prober): Promise<void> {
  await p.probe('drain: 70 kB body', '/drain', post(JSON.stringify({ pad: 'x'.repeat(70_000) })), 413)
  await p.probe('drain: 8 MB body', '/drain', post(`{"pad":"${'x'.repeat(8_000_000)}"}`), 413)
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const chunk = new TextEncoder().encode('x'.repeat(16_384))
      for (let i = 0; i < 64; i++) controller.enqueue(chunk)
      controller.close()
    },
  })
  await p.probe(
    'drain: 1 MB chunked body (no Content-Length)',
    '/drain',
    { method: 'POST', headers: { ...auth, ...json }, body: stream, duplex: 'half' },
    413,
  )
}

/** The dead-letter endpoints' bad ids, bodies and query fields. */
async function probeDeadLetter(p: Prober): Promise<void> {
  await p.probe('dead/retry: ids not UUIDs', '/dead/retry', post('{"ids":["not-a-uuid"]}'), 400)
  await p.probe('dead/retry: ids as string', '/dead/retry', post('{"ids":"x"}'), 400)
  await p.probe(
    'dead/retry: both ids and all',
    '/dead/retry',
    post(`{"ids":["${crypto.randomUUID()}"],"all":true}`),
    400,
  )
  await p.probe('dead/retry: all=false', '/dead/retry', post('{"all":false}'), 400)
  await p.probe('dead/retry: empty body', '/dead/retry', post(''), 400)
  await p.probe(
    'dead/retry: 1001 ids',
    '/dead/retry',
    post(JSON.stringify({ ids: Array.from({ length: 1001 }, () => crypto.randomUUID()) })),
    400,
  )
  await p.probe('dead: limit=abc', '/dead?limit=abc', { headers: auth }, 400)
  await p.probe('dead: limit=1e20', '/dead?limit=100000000000000000000', { headers: auth }, 400)
  await p.probe('dead: cursor=garbage', '/dead?cursor=1;DROP TABLE outbox_event', { headers: auth }, 400)
  await p.probe('dead: unknown query field', '/dead?evil=1', { headers: auth }, 400)
}

/** Missing, wrong and wrong-kind bearer tokens. */
async function probeAuth(p: Prober): Promise<void> {
  await p.probe('drain: no auth', '/drain', { method: 'POST', headers: json, body: '{}' }, 401)
  await p.probe('drain: wrong bearer token', '/drain', post('{}', { Authorization: `Bearer ${TOKEN}x` }), 401)
  await p.probe('drain: empty bearer', '/drain', post('{}', { Authorization: 'Bearer ' }), 401)
  await p.probe(
    'drain: Basic auth',
    '/drain',
    post('{}', { Authorization: `Basic ${btoa(`a:${TOKEN}`)}` }),
    401,
  )
  await p.probe('stats: no auth', '/stats', {}, 401)
  await p.probe('metrics: no auth', '/metrics', {}, 401)
  await p.probe('dead: wrong token', '/dead', { headers: { Authorization: 'Bearer nope' } }, 401)
}

/** Webhook signatures: wrong secret or body, expired, from the future, malformed, replayed. */
async function probeSignatures(p: Prober): Promise<void> {
  await p.probe(
    'drain: signature with wrong secret',
    '/drain',
    noAuthPost('{}', sign('{}', undefined, `${SECRET}x`)),
    401,
  )
  await p.probe('drain: signature of another body', '/drain', noAuthPost('{"maxEvents":5}', sign('{}')), 401)
  await p.probe(
    'drain: signature expired (10 min old)',
    '/drain',
    noAuthPost('{}', sign('{}', Math.floor(Date.now() / 1000) - 600)),
    401,
  )
  await p.probe(
    'drain: signature from the future (+10 min)',
    '/drain',
    noAuthPost('{}', sign('{}', Math.floor(Date.now() / 1000) + 600)),
    401,
  )
  await p.probe('drain: malformed signature header', '/drain', noAuthPost('{}', 't=abc,v1=zz'), 401)
  // replay: a correctly signed GET /stats is accepted once, then refused
  const sig = sign('')
  const first = await fetch(`${p.base}/stats`, { headers: { 'X-Outbox-Signature': sig } })
  p.record({
    name: 'stats: signed request (first use, must be 200)',
    status: first.status,
    code: '',
    ok: first.status === 200,
  })
  await first.text()
  await p.probe('stats: replayed signature', '/stats', { headers: { 'X-Outbox-Signature': sig } }, 401)
}
