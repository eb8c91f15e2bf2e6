/**
 * Bad-input sweep of the relay's HTTP API, run as the real CLI (`outbox-relay serve`) against the
 * chaos database: every case must answer 4xx with a JSON `{ error: { code, message } }`, the
 * service must keep serving, and the database must be unchanged (fingerprint before and after).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { join } from 'node:path'
import type pg from 'pg'
import { log, ROOT, sleep } from './util.ts'

export interface SweepCase {
  name: string
  status: number
  code: string
  ok: boolean
  note?: string
}

export interface SweepReport {
  cases: SweepCase[]
  failed: number
  stillServing: boolean
  dbUnchanged: boolean
  before: string
  after: string
  serverExitedEarly: boolean
  /** Requests that failed on a socket the server had closed (retried once on a new one). */
  keepAliveResets: string[]
}

const TOKEN = 'chaos-token-0123456789abcdefghijklmnopqrstuvwxyz'
const SECRET = 'chaos-secret-0123456789abcdefghijklmnopqrstuvwxyz'

/** A fingerprint of every outbox row's state (and the other tables' sizes). */
export async function dbFingerprint(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query(`SELECT
    (SELECT count(*) FROM outbox_event) AS rows,
    (SELECT json_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM outbox_event GROUP BY status) s) AS by_status,
    (SELECT coalesce(sum(attempts), 0) FROM outbox_event) AS attempts,
    (SELECT md5(coalesce(string_agg(concat_ws('|', id, status, attempts, available_at, locked_by, locked_until, last_error, published_at), ',' ORDER BY seq), ''))
       FROM outbox_event) AS state_md5,
    (SELECT count(*) FROM employee) AS employees,
    (SELECT count(*) FROM outbox_inbox) AS inbox`)
  return JSON.stringify(rows[0])
}

function sign(body: string, t = Math.floor(Date.now() / 1000), secret = SECRET) {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`
}

export async function runSweep(opts: {
  databaseUrl: string
  brokers: string
  port: number
  pool: pg.Pool
}): Promise<SweepReport> {
  const base = `http://127.0.0.1:${opts.port}`
  const child: ChildProcess = spawn(
    process.execPath,
    [join(ROOT, 'packages/relay/bin/outbox-relay.mjs'), 'serve'],
    {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: opts.databaseUrl,
        KAFKA_BROKERS: opts.brokers,
        RELAY_TOKEN: TOKEN,
        RELAY_WEBHOOK_SECRET: SECRET,
        PORT: String(opts.port),
        HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      if ((await fetch(`${base}/health`)).ok) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start: ${stderr}`)
    await sleep(200)
  }

  const auth = { Authorization: `Bearer ${TOKEN}` }
  const json = { 'Content-Type': 'application/json' }
  const before = await dbFingerprint(opts.pool)
  const cases: SweepCase[] = []
  const keepAliveResets: string[] = []
  const probe = async (
    name: string,
    path: string,
    init: RequestInit & { duplex?: 'half' },
    expected: number | number[],
  ) => {
    let status = 0
    let code = ''
    let ok = false
    let note: string | undefined
    try {
      let res: Response
      try {
        res = await fetch(`${base}${path}`, init)
      } catch (error) {
        // The server closes a kept-alive connection after answering 413 to a chunked body it did
        // not read, without saying `Connection: close`; the next request on that socket fails.
        if (!String((error as { cause?: unknown }).cause).includes('other side closed')) throw error
        keepAliveResets.push(name)
        res = await fetch(`${base}${path}`, init)
      }
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
    cases.push({ name, status, code, ok, ...(note ? { note } : {}) })
  }
  const post = (body: string, headers: Record<string, string> = {}) => ({
    method: 'POST',
    headers: { ...auth, ...json, ...headers },
    body,
  })

  // malformed JSON
  await probe('drain: malformed JSON', '/drain', post('{"maxEvents":'), 400)
  await probe('drain: not an object (array)', '/drain', post('[1,2]'), 400)
  await probe('drain: not an object (string)', '/drain', post('"drain"'), 400)
  await probe('drain: JSON null', '/drain', post('null'), 400)
  await probe('drain: trailing garbage', '/drain', post('{"maxEvents":1}xyz'), 400)
  await probe(
    'drain: invalid UTF-8',
    '/drain',
    { ...post(''), body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) },
    400,
  )
  // wrong types
  await probe('drain: maxEvents as string', '/drain', post('{"maxEvents":"10"}'), 400)
  await probe('drain: budgetMs as boolean', '/drain', post('{"budgetMs":true}'), 400)
  await probe('drain: topics as string', '/drain', post('{"topics":"a"}'), 400)
  await probe('drain: topics with a number', '/drain', post('{"topics":[1]}'), 400)
  await probe('drain: topics empty', '/drain', post('{"topics":[]}'), 400)
  await probe(
    'drain: topic name too long',
    '/drain',
    post(JSON.stringify({ topics: ['t'.repeat(250)] })),
    400,
  )
  await probe('drain: maxEvents fractional', '/drain', post('{"maxEvents":1.5}'), 400)
  await probe('drain: maxEvents zero', '/drain', post('{"maxEvents":0}'), 400)
  await probe('drain: budgetMs negative', '/drain', post('{"budgetMs":-1}'), 400)
  // huge numbers
  await probe('drain: maxEvents 1e400 (Infinity)', '/drain', post('{"maxEvents":1e400}'), 400)
  await probe('drain: maxEvents 2^64', '/drain', post('{"maxEvents":18446744073709551616}'), 400)
  await probe('drain: budgetMs 1e30', '/drain', post('{"budgetMs":1e30}'), 400)
  await probe('drain: maxEvents 10000001', '/drain', post('{"maxEvents":10000001}'), 400)
  // unknown fields
  await probe('drain: unknown field', '/drain', post('{"maxEvents":1,"deleteAll":true}'), 400)
  await probe('drain: __proto__ field', '/drain', post('{"__proto__":{"admin":true}}'), 400)
  // oversized bodies
  await probe('drain: 70 kB body', '/drain', post(JSON.stringify({ pad: 'x'.repeat(70_000) })), 413)
  await probe('drain: 8 MB body', '/drain', post(`{"pad":"${'x'.repeat(8_000_000)}"}`), 413)
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const chunk = new TextEncoder().encode('x'.repeat(16_384))
      for (let i = 0; i < 64; i++) controller.enqueue(chunk)
      controller.close()
    },
  })
  await probe(
    'drain: 1 MB chunked body (no Content-Length)',
    '/drain',
    { method: 'POST', headers: { ...auth, ...json }, body: stream, duplex: 'half' },
    413,
  )
  // dead-letter endpoints
  await probe('dead/retry: ids not UUIDs', '/dead/retry', post('{"ids":["not-a-uuid"]}'), 400)
  await probe('dead/retry: ids as string', '/dead/retry', post('{"ids":"x"}'), 400)
  await probe(
    'dead/retry: both ids and all',
    '/dead/retry',
    post(`{"ids":["${crypto.randomUUID()}"],"all":true}`),
    400,
  )
  await probe('dead/retry: all=false', '/dead/retry', post('{"all":false}'), 400)
  await probe('dead/retry: empty body', '/dead/retry', post(''), 400)
  await probe(
    'dead/retry: 1001 ids',
    '/dead/retry',
    post(JSON.stringify({ ids: Array.from({ length: 1001 }, () => crypto.randomUUID()) })),
    400,
  )
  await probe('dead: limit=abc', '/dead?limit=abc', { headers: auth }, 400)
  await probe('dead: limit=1e20', '/dead?limit=100000000000000000000', { headers: auth }, 400)
  await probe('dead: cursor=garbage', '/dead?cursor=1;DROP TABLE outbox_event', { headers: auth }, 400)
  await probe('dead: unknown query field', '/dead?evil=1', { headers: auth }, 400)
  // auth
  await probe('drain: no auth', '/drain', { method: 'POST', headers: json, body: '{}' }, 401)
  await probe('drain: wrong bearer token', '/drain', post('{}', { Authorization: `Bearer ${TOKEN}x` }), 401)
  await probe('drain: empty bearer', '/drain', post('{}', { Authorization: 'Bearer ' }), 401)
  await probe(
    'drain: Basic auth',
    '/drain',
    post('{}', { Authorization: `Basic ${btoa(`a:${TOKEN}`)}` }),
    401,
  )
  await probe('stats: no auth', '/stats', {}, 401)
  await probe('metrics: no auth', '/metrics', {}, 401)
  await probe('dead: wrong token', '/dead', { headers: { Authorization: 'Bearer nope' } }, 401)
  const noAuthPost = (body: string, sig: string) => ({
    method: 'POST',
    headers: { ...json, 'X-Outbox-Signature': sig },
    body,
  })
  await probe(
    'drain: signature with wrong secret',
    '/drain',
    noAuthPost('{}', sign('{}', undefined, `${SECRET}x`)),
    401,
  )
  await probe('drain: signature of another body', '/drain', noAuthPost('{"maxEvents":5}', sign('{}')), 401)
  await probe(
    'drain: signature expired (10 min old)',
    '/drain',
    noAuthPost('{}', sign('{}', Math.floor(Date.now() / 1000) - 600)),
    401,
  )
  await probe(
    'drain: signature from the future (+10 min)',
    '/drain',
    noAuthPost('{}', sign('{}', Math.floor(Date.now() / 1000) + 600)),
    401,
  )
  await probe('drain: malformed signature header', '/drain', noAuthPost('{}', 't=abc,v1=zz'), 401)
  // replay: a correctly signed GET /stats is accepted once, then refused
  const sig = sign('')
  const first = await fetch(`${base}/stats`, { headers: { 'X-Outbox-Signature': sig } })
  cases.push({
    name: 'stats: signed request (first use, must be 200)',
    status: first.status,
    code: '',
    ok: first.status === 200,
  })
  await first.text()
  await probe('stats: replayed signature', '/stats', { headers: { 'X-Outbox-Signature': sig } }, 401)
  // routing
  await probe('unknown path', '/drain/../../etc/passwd', { headers: auth }, 404)
  await probe('GET /drain (wrong method)', '/drain', { headers: auth }, [404, 405])

  // the service keeps serving: health, stats and a real (empty) drain
  const health = await fetch(`${base}/health`)
  const stats = await fetch(`${base}/stats`, { headers: auth })
  const drain = await fetch(`${base}/drain`, post('{"maxEvents":1}'))
  const drainBody = (await drain.json()) as { published?: number }
  await health.text()
  await stats.text()
  const stillServing =
    health.status === 200 && stats.status === 200 && drain.status === 200 && child.exitCode === null
  const after = await dbFingerprint(opts.pool)
  const serverExitedEarly = child.exitCode !== null
  child.kill('SIGTERM')
  await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))
  const failed = cases.filter((c) => !c.ok).length
  log(
    `sweep: ${cases.length} cases, ${failed} failed; still serving ${stillServing} (drain published ${drainBody.published}); db unchanged ${before === after}`,
  )
  return {
    cases,
    failed,
    stillServing,
    dbUnchanged: before === after,
    before,
    after,
    serverExitedEarly,
    keepAliveResets,
  }
}
