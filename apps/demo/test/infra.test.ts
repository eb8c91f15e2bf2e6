import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { startLocalKafka } from '../src/infra.js'

let dir: string | undefined
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** A stand-in for scripts/kafka.sh that records each call with the KAFKA_PORT it was given. */
function fakeBrokerScript(running: boolean) {
  dir = mkdtempSync(join(tmpdir(), 'demo-kafka-'))
  const log = join(dir, 'calls.log')
  const script = join(dir, 'kafka.sh')
  writeFileSync(
    script,
    `echo "$1 KAFKA_PORT=$KAFKA_PORT" >> '${log}'\nif [ "$1" = status ]; then exit ${running ? 0 : 1}; fi\n`,
  )
  chmodSync(script, 0o755)
  return { script, calls: () => readFileSync(log, 'utf8').trim().split('\n') }
}

describe('startLocalKafka', () => {
  it('checks, starts, connects to and stops the broker on KAFKA_PORT', async () => {
    const port = loadConfig({ KAFKA_PORT: '19092' }).KAFKA_PORT
    const fake = fakeBrokerScript(false)
    const kafka = await startLocalKafka(port, fake.script)
    expect(kafka.url).toBe('127.0.0.1:19092')
    expect(kafka.startedHere).toBe(true)
    await kafka.stop()
    expect(fake.calls()).toEqual([
      'status KAFKA_PORT=19092',
      'start KAFKA_PORT=19092',
      'stop KAFKA_PORT=19092',
    ])
  })

  it('leaves a broker that was already running on that port alone', async () => {
    const fake = fakeBrokerScript(true)
    const kafka = await startLocalKafka(19093, fake.script)
    expect(kafka.url).toBe('127.0.0.1:19093')
    await kafka.stop()
    expect(fake.calls()).toEqual(['status KAFKA_PORT=19093'])
  })

  it('defaults to port 9092 and names a bad KAFKA_PORT', () => {
    expect(loadConfig({}).KAFKA_PORT).toBe(9092)
    expect(() => loadConfig({ KAFKA_PORT: 'kafka' })).toThrow(/KAFKA_PORT/)
  })
})
