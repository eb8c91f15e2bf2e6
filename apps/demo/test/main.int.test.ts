/**
 * `npm run demo` as a person uses it: the process starts an embedded PostgreSQL, prints its banner,
 * the banner's curl lines work when pasted twice in a row, and Ctrl-C (SIGINT to the whole process
 * group, as a terminal sends it) stops everything without error output. It exports its spans over
 * OTLP to an endpoint of this test: each request's trace runs on to the directory consumer.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { kafkaBrokers, uniqueTopic } from '@prisma-outbox/devkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tryCommands } from '../src/welcome.js'
import { type OtlpSpan, otlpEndpoint } from './otlp.js'

const run = promisify(execFile)
const DEMO = fileURLToPath(new URL('..', import.meta.url))
const RELAY_TOKEN = 'demo-main-token-0123456789abcdefghijklm'

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })

let child: ChildProcess
let dataDir: string
let output = ''
let url: string
let exited: Promise<number | null>
let otlp: Awaited<ReturnType<typeof otlpEndpoint>>

beforeAll(async () => {
  // Outside the checkout; as root the embedded PostgreSQL runs as "postgres", which must enter it.
  dataDir = mkdtempSync(join(tmpdir(), 'demo-pg-'))
  chmodSync(dataDir, 0o755)
  otlp = await otlpEndpoint()
  const { DATABASE_URL: _useEmbedded, ...env } = process.env
  child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: DEMO,
    detached: true, // its own process group, like a terminal's foreground job
    env: {
      ...env,
      KAFKA_BROKERS: kafkaBrokers().join(','),
      PORT: '0',
      RELAY_TOKEN,
      DRAIN_INTERVAL_MS: '100',
      EMBEDDED_PG_DIR: join(dataDir, 'data'),
      EMBEDDED_PG_PORT: String(await freePort()),
      EMPLOYEE_TOPIC: uniqueTopic('demo.main.employee'),
      CONSUMER_GROUP: uniqueTopic('demo-main'),
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /demo running on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match?.[1] && output.includes('Ctrl-C stops the demo')) resolve(match[1])
    }
    child.stdout?.on('data', check)
    child.once('exit', (code) => reject(new Error(`the demo exited (${code}) before it was up:\n${output}`)))
  })
}, 120_000)

afterAll(async () => {
  if (child?.pid && child.exitCode === null) process.kill(-child.pid, 'SIGKILL')
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  otlp?.server.close()
})

describe('npm run demo', () => {
  it('prints curl lines that run as pasted, twice in a row', async () => {
    const lines = tryCommands(url, RELAY_TOKEN)
    for (const line of lines) expect(output, 'the banner prints each line').toContain(line)
    for (const round of [1, 2]) {
      const { stdout } = await run('bash', ['-e', '-o', 'pipefail', '-c', lines.join('\n')]).catch(
        (error: { stdout?: string; stderr?: string }) => {
          throw new Error(`round ${round} failed:\n${error.stdout}\n${error.stderr}`)
        },
      )
      expect(stdout).toContain('204')
      expect(stdout).toContain('"published"')
      expect(stdout).toContain('"drain":"POST /outbox/drain"')
    }
    expect(output, 'the banner says how to see whole traces').toContain(
      'Tracing: each request prints its trace id',
    )
    expect(output, 'each request its trace id').toMatch(/^POST \/employees → 201 {2}trace [0-9a-f]{32}$/m)
    expect(output).toMatch(/^DELETE \/employees\/:id → 204 {2}trace [0-9a-f]{32}$/m)
  }, 60_000)

  it('stops on Ctrl-C with exit code 0 and no error output', async () => {
    const before = output.length
    if (!child.pid) throw new Error('no demo process')
    process.kill(-child.pid, 'SIGINT')
    expect(await exited).toBe(0)
    const shutdown = output.slice(before)
    expect(shutdown).toContain('SIGINT: stopping...')
    expect(shutdown).not.toMatch(/lost|failed|error/i)
  }, 60_000)

  it('exported whole traces: each POST /employees → write → create (relay) → process (directory consumer)', () => {
    const byId = new Map(otlp.spans.map((s) => [s.spanId, s]))
    const requests = otlp.spans.filter((s) => s.name === 'POST /employees')
    expect(requests).toHaveLength(2)
    for (const request of requests) {
      expect(output).toContain(`trace ${request.traceId}`)
      const inTrace = otlp.spans.filter((s) => s.traceId === request.traceId)
      const write = inTrace.find(
        (s) => s.name === 'outbox capture Employee.create' && s.parentSpanId === request.spanId,
      )
      const create = inTrace.find((s) => s.name.startsWith('create ') && s.parentSpanId === write?.spanId)
      const process = inTrace.find(
        (s): s is OtlpSpan => s.name.startsWith('process ') && s.parentSpanId === create?.spanId,
      )
      expect(write, "the write's span is the request's child").toBeDefined()
      expect(create, 'the relay continued the write').toBeDefined()
      expect(process, "the consumer's span is the relay's child").toBeDefined()
      expect(byId.get(process?.spanId ?? '')?.service).toBe('prisma-outbox-demo')
    }
  })
})
