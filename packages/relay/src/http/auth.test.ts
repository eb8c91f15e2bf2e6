import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { RelayError } from '../core/errors.js'
import {
  parseSignatureHeader,
  ReplayCache,
  relayAuth,
  resolveAuth,
  SIGNATURE_HEADER,
  signWebhook,
  timingSafeEqualText,
} from './auth.js'
import { handleError } from './errors.js'

// biome-ignore lint/suspicious/noExplicitAny: test responses are inspected freely
const json = (res: Response | Promise<Response>): Promise<any> => Promise.resolve(res).then((r) => r.json())

const TOKEN = 't'.repeat(40)
const SECRET = 's'.repeat(40)
const silent = { error() {} }

function app(auth: Parameters<typeof relayAuth>[0], now?: () => number) {
  const a = new Hono()
  a.onError(handleError(silent))
  a.use('*', relayAuth(auth, now))
  a.post('/drain', async (c) => c.json({ ok: true, body: await c.req.text() }))
  return a
}

const post = (a: Hono, headers: Record<string, string>, body = '{"maxEvents":1}') =>
  a.request('/drain', { method: 'POST', headers, body })

describe('relayAuth options', () => {
  it('Should throw a RelayError naming auth when no credentials are configured', () => {
    for (const auth of [undefined, {}, { token: undefined, webhookSecret: undefined }]) {
      expect(() => relayAuth(auth as never)).toThrowError(RelayError)
      expect(() => relayAuth(auth as never)).toThrowError(/auth is required.*auth\.token.*"none"/)
    }
  })

  it('Should reject short tokens and secrets, naming the option', () => {
    expect(() => resolveAuth({ token: 'short' })).toThrowError(/auth\.token must be a string of at least 32/)
    expect(() => resolveAuth({ webhookSecret: 'short' })).toThrowError(/auth\.webhookSecret/)
    expect(() => resolveAuth({ webhookSecret: [] })).toThrowError(/auth\.webhookSecret must not be empty/)
    expect(() => resolveAuth({ token: TOKEN, toleranceSeconds: 0 })).toThrowError(/auth\.toleranceSeconds/)
  })

  it('Should accept auth: "none" explicitly', async () => {
    expect(resolveAuth('none')).toBe('none')
    expect((await post(app('none'), {})).status).toBe(200)
  })
})

describe('Bearer auth matrix', () => {
  const a = app({ token: TOKEN })
  it.each([
    ['no credentials', {}, /missing credentials/],
    ['wrong token', { Authorization: `Bearer ${'x'.repeat(40)}` }, /invalid bearer token/],
    ['token prefix', { Authorization: `Bearer ${TOKEN.slice(0, 39)}` }, /invalid bearer token/],
    ['token with extra', { Authorization: `Bearer ${TOKEN}x` }, /invalid bearer token/],
    ['empty bearer', { Authorization: 'Bearer ' }, /malformed Authorization/],
    ['basic scheme', { Authorization: `Basic ${TOKEN}` }, /malformed Authorization/],
    [
      'signature when only a token is configured',
      { [SIGNATURE_HEADER]: 't=1,v1=00' },
      /signed requests are not accepted/,
    ],
  ])('Should answer 401 JSON for %s', async (_name, headers, message) => {
    const res = await post(a, headers as Record<string, string>)
    expect(res.status).toBe(401)
    expect(res.headers.get('content-type')).toMatch(/application\/json/)
    const body = await json(res)
    expect(body.error.code).toBe('UNAUTHORIZED')
    expect(body.error.message).toMatch(message)
    expect(JSON.stringify(body)).not.toContain(TOKEN)
  })

  it('Should pass with the right token (scheme case-insensitive)', async () => {
    expect((await post(a, { Authorization: `Bearer ${TOKEN}` })).status).toBe(200)
    expect((await post(a, { Authorization: `bearer ${TOKEN}` })).status).toBe(200)
  })
})

describe('Webhook signature auth matrix', () => {
  let clock = 1_800_000_000_000
  const now = () => clock
  const a = app({ webhookSecret: SECRET }, now)
  const seconds = () => Math.floor(clock / 1000)

  it('Should pass a good signature once and reject its replay', async () => {
    const body = '{"maxEvents":5}'
    const signature = await signWebhook(SECRET, body, seconds())
    const ok = await post(a, { [SIGNATURE_HEADER]: signature }, body)
    expect(ok.status).toBe(200)
    expect(await json(ok)).toEqual({ ok: true, body })
    const replay = await post(a, { [SIGNATURE_HEADER]: signature }, body)
    expect(replay.status).toBe(401)
    expect((await json(replay)).error.message).toMatch(/replay/)
  })

  it('Should accept an empty body when signed as empty', async () => {
    const signature = await signWebhook(SECRET, '', seconds())
    expect((await post(a, { [SIGNATURE_HEADER]: signature }, '')).status).toBe(200)
  })

  it.each([
    ['missing', async () => ({}), /missing credentials/],
    ['malformed', async () => ({ [SIGNATURE_HEADER]: 'sha256=abc' }), /malformed/],
    ['non-hex v1', async () => ({ [SIGNATURE_HEADER]: `t=${seconds()},v1=${'z'.repeat(64)}` }), /malformed/],
    [
      'wrong secret',
      async () => ({ [SIGNATURE_HEADER]: await signWebhook('w'.repeat(40), '{"maxEvents":1}', seconds()) }),
      /invalid signature/,
    ],
    [
      'other body',
      async () => ({ [SIGNATURE_HEADER]: await signWebhook(SECRET, '{"maxEvents":2}', seconds()) }),
      /invalid signature/,
    ],
    [
      'other timestamp',
      async () => {
        const sig = await signWebhook(SECRET, '{"maxEvents":1}', seconds())
        return { [SIGNATURE_HEADER]: sig.replace(/t=\d+/, `t=${seconds() - 1}`) }
      },
      /invalid signature/,
    ],
    [
      'expired (6 minutes old)',
      async () => ({ [SIGNATURE_HEADER]: await signWebhook(SECRET, '{"maxEvents":1}', seconds() - 360) }),
      /expired/,
    ],
    [
      'from the future (6 minutes ahead)',
      async () => ({ [SIGNATURE_HEADER]: await signWebhook(SECRET, '{"maxEvents":1}', seconds() + 360) }),
      /future/,
    ],
    [
      'bearer when only a secret is configured',
      async () => ({ Authorization: `Bearer ${TOKEN}` }),
      /bearer tokens are not accepted/,
    ],
  ])('Should answer 401 JSON for a %s signature', async (_name, headers, message) => {
    const res = await post(a, await headers())
    expect(res.status).toBe(401)
    const body = await json(res)
    expect(body).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.stringMatching(message) } })
    expect(JSON.stringify(body)).not.toContain(SECRET)
  })

  it('Should accept a signature 4 minutes old and reject it again after the window', async () => {
    const signature = await signWebhook(SECRET, '{"maxEvents":1}', seconds() - 240)
    expect((await post(a, { [SIGNATURE_HEADER]: signature })).status).toBe(200)
    clock += 120_000
    const late = await post(a, { [SIGNATURE_HEADER]: signature })
    expect(late.status).toBe(401)
    expect((await json(late)).error.message).toMatch(/expired/)
  })

  it('Should accept any of several secrets (rotation) and any of several v1 values', async () => {
    const b = app({ webhookSecret: ['o'.repeat(40), SECRET] }, now)
    const good = await signWebhook(SECRET, '{}', seconds())
    const other = await signWebhook('x'.repeat(40), '{}', seconds())
    const both = `${other},v1=${good.split('v1=')[1]}`
    expect((await post(b, { [SIGNATURE_HEADER]: both }, '{}')).status).toBe(200)
  })

  it('Should accept either scheme when both are configured', async () => {
    const b = app({ token: TOKEN, webhookSecret: SECRET }, now)
    expect((await post(b, { Authorization: `Bearer ${TOKEN}` })).status).toBe(200)
    const sig = await signWebhook(SECRET, '{"maxEvents":1}', seconds())
    expect((await post(b, { [SIGNATURE_HEADER]: sig })).status).toBe(200)
  })
})

describe('auth helpers', () => {
  it('Should compare strings in constant time over digests', async () => {
    expect(await timingSafeEqualText('abc', 'abc')).toBe(true)
    expect(await timingSafeEqualText('abc', 'abd')).toBe(false)
    expect(await timingSafeEqualText('abc', 'abcd')).toBe(false)
  })

  it('Should sign like a plain HMAC-SHA256 over "<t>.<body>"', async () => {
    const { createHmac } = await import('node:crypto')
    const expected = createHmac('sha256', SECRET).update('1700000000.{"a":1}').digest('hex')
    expect(await signWebhook(SECRET, '{"a":1}', 1_700_000_000)).toBe(`t=1700000000,v1=${expected}`)
  })

  it('Should parse signature headers strictly', () => {
    const v1 = 'a'.repeat(64)
    expect(parseSignatureHeader(`t=12,v1=${v1}`)).toEqual({ timestamp: 12, signatures: [v1] })
    expect(parseSignatureHeader(`t=12, v0=x, v1=${v1}`)).toEqual({ timestamp: 12, signatures: [v1] })
    expect(parseSignatureHeader(`v1=${v1}`)).toBeUndefined()
    expect(parseSignatureHeader('t=12')).toBeUndefined()
    expect(parseSignatureHeader(`t=-1,v1=${v1}`)).toBeUndefined()
    expect(parseSignatureHeader(`t=1,v1=${v1.slice(1)}`)).toBeUndefined()
  })

  it('Should bound the replay cache by size and expire entries', () => {
    const cache = new ReplayCache(3, 1_000)
    expect(cache.add('a', 0)).toBe(true)
    expect(cache.add('a', 10)).toBe(false)
    cache.add('b', 20)
    cache.add('c', 30)
    cache.add('d', 40)
    expect(cache.size).toBe(3)
    expect(cache.add('a', 50)).toBe(true) // evicted as the oldest
    expect(cache.add('d', 2_000)).toBe(true) // expired
  })
})
