/**
 * Authentication of the relay's HTTP API, on Web Crypto only (edge runtimes included):
 * `Authorization: Bearer <token>` and signed webhooks (`X-Outbox-Signature`).
 * @module
 */
import type { MiddlewareHandler } from 'hono'
import { RelayError } from '../errors.js'
import { HttpError } from './errors.js'

/** Name of the webhook signature header. */
export const SIGNATURE_HEADER = 'X-Outbox-Signature'

/** Default replay window: signatures older or newer than this (seconds) are rejected. */
export const DEFAULT_TOLERANCE_SECONDS = 300

/** Minimum length of the bearer token and of the webhook secret. */
export const MIN_SECRET_LENGTH = 32

/**
 * How callers authenticate. Give `token`, `webhookSecret` or both; `'none'` turns auth off
 * (only behind a private network or another gateway that authenticates).
 *
 * @param [token] - bearer token, at least 32 characters
 * @param [webhookSecret] - HMAC secret(s), at least 32 characters each; several for rotation
 * @param [toleranceSeconds=300] - replay window of signed requests
 * @param [replayCacheSize=10000] - signatures remembered to reject replays within the window
 */
export type AuthOptions =
  | 'none'
  | {
      token?: string | undefined
      webhookSecret?: string | string[] | undefined
      toleranceSeconds?: number | undefined
      replayCacheSize?: number | undefined
    }

const encoder = new TextEncoder()

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)))
}

/** Constant-time comparison of two equal-length byte arrays (false for different lengths). */
export function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number)
  return diff === 0
}

/**
 * Compares two strings in constant time: both are hashed to SHA-256 first, so the comparison
 * runs over equal-length digests and leaks neither content nor length.
 */
export async function timingSafeEqualText(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([sha256(a), sha256(b)])
  return timingSafeEqualBytes(da, db)
}

function hexToBytes(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

function bytesToHex(bytes: Uint8Array): string {
  let hex = ''
  for (const b of bytes) hex += b.toString(16).padStart(2, '0')
  return hex
}

type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>

function hmacKey(secret: string, usage: 'sign' | 'verify'): Promise<HmacKey> {
  return crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    usage,
  ])
}

/**
 * Builds the `X-Outbox-Signature` value for a request body: `t=<unix seconds>,v1=<hex
 * HMAC-SHA256(secret, "<t>.<body>")>`. What a caller (cron job, webhook sender) computes.
 *
 * @param secret - the relay's webhook secret
 * @param body - the exact request body text (`''` for none)
 * @param [timestamp=now] - unix seconds
 * @example
 * const signature = await signWebhook(secret, JSON.stringify({ maxEvents: 1000 }))
 * await fetch(url, { method: 'POST', headers: { 'X-Outbox-Signature': signature, 'Content-Type': 'application/json' }, body })
 */
export async function signWebhook(
  secret: string,
  body: string,
  timestamp = Math.floor(Date.now() / 1000),
): Promise<string> {
  const key = await hmacKey(secret, 'sign')
  const mac = await crypto.subtle.sign('HMAC', key, encoder.encode(`${timestamp}.${body}`))
  return `t=${timestamp},v1=${bytesToHex(new Uint8Array(mac))}`
}

/** Parses `t=…,v1=…[,v1=…]`; undefined when malformed. @internal */
export function parseSignatureHeader(value: string): { timestamp: number; signatures: string[] } | undefined {
  let timestamp: number | undefined
  const signatures: string[] = []
  for (const part of value.split(',')) {
    const eq = part.indexOf('=')
    if (eq < 0) return undefined
    const name = part.slice(0, eq).trim()
    const v = part.slice(eq + 1).trim()
    if (name === 't') {
      if (!/^\d{1,12}$/.test(v)) return undefined
      timestamp = Number(v)
    } else if (name === 'v1') {
      if (!/^[0-9a-fA-F]{64}$/.test(v)) return undefined
      signatures.push(v.toLowerCase())
    }
    // other schemes (v0, v2…) are ignored, so senders can add new ones
  }
  if (timestamp === undefined || signatures.length === 0 || signatures.length > 8) return undefined
  return { timestamp, signatures }
}

/**
 * Remembers signatures seen within the replay window (an LRU bounded by size, entries expiring
 * after the window). In-memory: each relay instance has its own, so behind a load balancer a
 * replay to ANOTHER instance within the window is not caught — the timestamp window still bounds it.
 * @internal
 */
export class ReplayCache {
  private readonly seen = new Map<string, number>()
  constructor(
    private readonly maxSize: number,
    private readonly ttlMs: number,
  ) {}

  /** Records `key`; false when it was already seen (and not expired). */
  add(key: string, now = Date.now()): boolean {
    const expires = this.seen.get(key)
    if (expires !== undefined && expires > now) return false
    this.seen.delete(key)
    // Map keeps insertion order: evict expired entries and, when full, the oldest.
    for (const [k, exp] of this.seen) {
      if (exp > now && this.seen.size < this.maxSize) break
      this.seen.delete(k)
    }
    this.seen.set(key, now + this.ttlMs)
    return true
  }

  get size(): number {
    return this.seen.size
  }
}

interface ResolvedAuth {
  token: string | undefined
  secrets: string[]
  toleranceSeconds: number
  replayCacheSize: number
}

/** Checks auth options once, at build time. @internal */
export function resolveAuth(auth: AuthOptions | undefined): ResolvedAuth | 'none' {
  if (auth === 'none') return 'none'
  const fail = (message: string): never => {
    throw new RelayError('RELAY_INVALID_OPTIONS', `invalid relay app options: ${message}`)
  }
  if (
    auth === undefined ||
    (typeof auth === 'object' && auth.token === undefined && auth.webhookSecret === undefined)
  )
    fail('auth is required: give auth.token and/or auth.webhookSecret, or set auth: "none" explicitly')
  if (typeof auth !== 'object' || auth === null) return fail('auth must be an object or "none"')
  const { token, toleranceSeconds = DEFAULT_TOLERANCE_SECONDS, replayCacheSize = 10_000 } = auth
  if (token !== undefined && (typeof token !== 'string' || token.length < MIN_SECRET_LENGTH))
    fail(`auth.token must be a string of at least ${MIN_SECRET_LENGTH} characters`)
  // A token with whitespace can never match "Bearer <token>" (often a secret file's newline).
  if (typeof token === 'string' && /\s/.test(token))
    fail('auth.token must not contain whitespace (trim the newline a secret file ends with)')
  const secrets =
    auth.webhookSecret === undefined
      ? []
      : Array.isArray(auth.webhookSecret)
        ? auth.webhookSecret
        : [auth.webhookSecret]
  if (auth.webhookSecret !== undefined && secrets.length === 0) fail('auth.webhookSecret must not be empty')
  for (const s of secrets)
    if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH)
      fail(`auth.webhookSecret must be a string (or strings) of at least ${MIN_SECRET_LENGTH} characters`)
    else if (s.trim() !== s)
      fail(
        'auth.webhookSecret must not start or end with whitespace (trim the newline a secret file ends with)',
      )
  if (!Number.isInteger(toleranceSeconds) || toleranceSeconds < 1 || toleranceSeconds > 3_600)
    fail('auth.toleranceSeconds must be an integer between 1 and 3600')
  if (!Number.isInteger(replayCacheSize) || replayCacheSize < 1)
    fail('auth.replayCacheSize must be a positive integer')
  return { token, secrets, toleranceSeconds, replayCacheSize }
}

/**
 * The auth middleware. A request passes with a valid bearer token OR a valid, fresh, unseen
 * signature; anything else is a 401 `UNAUTHORIZED` whose message says what was wrong but never
 * echoes a credential.
 *
 * @param auth - see {@link AuthOptions}
 * @param [now] - clock (tests)
 * @throws RelayError `RELAY_INVALID_OPTIONS` naming the option, at build time
 * @example
 * app.use('/drain', relayAuth({ token: process.env.RELAY_TOKEN }))
 */
export function relayAuth(auth: AuthOptions | undefined, now: () => number = Date.now): MiddlewareHandler {
  const resolved = resolveAuth(auth)
  if (resolved === 'none')
    return async function relayAuthNone(_c, next) {
      await next()
    }
  const { token, secrets, toleranceSeconds } = resolved
  const replays = new ReplayCache(resolved.replayCacheSize, 2 * toleranceSeconds * 1000)
  const keys = Promise.all(secrets.map((s) => hmacKey(s, 'verify')))
  const unauthorized = (message: string) => new HttpError(401, 'UNAUTHORIZED', message)

  return async function relayAuth(c, next) {
    const authorization = c.req.header('Authorization')
    const signatureHeader = c.req.header(SIGNATURE_HEADER)
    if (authorization !== undefined) {
      if (token === undefined) throw unauthorized('bearer tokens are not accepted: sign the request')
      const match = /^Bearer +(\S+) *$/i.exec(authorization)
      if (!match) throw unauthorized('malformed Authorization header: expected "Bearer <token>"')
      if (!(await timingSafeEqualText(match[1] as string, token))) throw unauthorized('invalid bearer token')
      return next()
    }
    if (signatureHeader !== undefined) {
      if (secrets.length === 0) throw unauthorized('signed requests are not accepted: use a bearer token')
      const parsed = parseSignatureHeader(signatureHeader)
      if (!parsed)
        throw unauthorized(`malformed ${SIGNATURE_HEADER} header: expected "t=<unix seconds>,v1=<hex>"`)
      const skew = Math.floor(now() / 1000) - parsed.timestamp
      if (skew > toleranceSeconds)
        throw unauthorized('signature expired: timestamp is outside the replay window')
      if (skew < -toleranceSeconds)
        throw unauthorized('signature timestamp is in the future beyond the tolerance')
      const body = await c.req.text()
      const data = encoder.encode(`${parsed.timestamp}.${body}`)
      let valid: string | undefined
      for (const key of await keys) {
        for (const sig of parsed.signatures) {
          // crypto.subtle.verify compares in constant time
          if (await crypto.subtle.verify('HMAC', key, hexToBytes(sig) as Uint8Array<ArrayBuffer>, data))
            valid = sig
          if (valid) break
        }
        if (valid) break
      }
      if (!valid) throw unauthorized('invalid signature')
      if (!replays.add(valid, now())) throw unauthorized('signature already used (replay)')
      return next()
    }
    throw unauthorized(
      `missing credentials: send "Authorization: Bearer <token>" or a ${SIGNATURE_HEADER} header`,
    )
  }
}
