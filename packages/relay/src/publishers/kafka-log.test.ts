import { Writable } from 'node:stream'
import { logLevel } from 'kafkajs'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { engineLogHooks, type Logger } from '../core/log.js'
import { kafkaEntryLevel, kafkaLogCreator } from './kafka-log.js'

/** A pino logger writing into an array (pino's numeric levels: 20 debug, 30 info, 40 warn, 50 error). */
function pinoLines(level = 'debug') {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  return { lines, logger: pino({ level }, stream) }
}

const entry = (level: number, namespace: string, log: Record<string, unknown>) => ({
  namespace,
  level,
  label: '',
  log: { timestamp: 't', logger: 'kafkajs', message: '', ...log } as never,
})

describe('kafkaLogCreator with pino', () => {
  it('Should take a pino instance as the logger (types and output)', () => {
    const { lines, logger } = pinoLines()
    const typed: Logger = logger
    const write = kafkaLogCreator(typed)(logLevel.DEBUG)
    write(
      entry(logLevel.ERROR, 'Connection', { message: 'Connection error: ECONNREFUSED', broker: 'b:9092' }),
    )
    engineLogHooks(typed.child?.({ relayId: 'r1' }) ?? typed).onDrain?.({
      published: 1,
      retried: 0,
      dead: 0,
      remaining: 0,
      durationMs: 3,
    })
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: 'Connection error: ECONNREFUSED',
        component: 'kafkajs',
        namespace: 'Connection',
        broker: 'b:9092',
      }),
      expect.objectContaining({ level: 20, msg: 'drain done', relayId: 'r1', published: 1 }),
    ])
  })

  it('Should demote the expected start-up noise to debug and keep the rest at its level', () => {
    const { lines, logger } = pinoLines('info')
    const write = kafkaLogCreator(logger)(logLevel.DEBUG)
    write(
      entry(logLevel.WARN, 'Producer', {
        message: 'Limiting retries for the idempotent producer may invalidate EoS guarantees',
      }),
    )
    write(
      entry(logLevel.ERROR, 'Connection', {
        message: 'Response InitProducerId(key: 22, version: 1)',
        error: 'The group coordinator is not available',
      }),
    )
    write(
      entry(logLevel.ERROR, 'Producer', {
        message:
          'Failed to send messages: There is no leader for this topic-partition as we are in the middle of a leadership election',
        retryCount: 0,
      }),
    )
    write(
      entry(logLevel.ERROR, 'Producer', {
        message: 'Failed to send messages: Connection error: ECONNREFUSED',
        retryCount: 0,
      }),
    )
    write(entry(logLevel.WARN, 'Admin', { message: 'Could not delete topics' }))
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [50, 'Failed to send messages: Connection error: ECONNREFUSED'],
      [40, 'Could not delete topics'],
    ])
  })

  it('Should keep a transient answer at error when nothing retries it', () => {
    expect(
      kafkaEntryLevel(
        entry(logLevel.ERROR, 'Admin', { message: 'This server does not host this topic-partition' }),
      ),
    ).toBe('error')
  })
})
