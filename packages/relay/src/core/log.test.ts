import { describe, expect, it } from 'vitest'
import { childLogger, createJsonLogger, engineLogHooks, type Logger } from './log.js'

const at = new Date('2026-12-01T10:00:00.000Z')

function capture(options: Partial<Parameters<typeof createJsonLogger>[0]> = {}) {
  const lines: string[] = []
  const logger = createJsonLogger({ write: (l) => lines.push(l), now: () => at, ...options })
  return { lines, logger, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

describe('createJsonLogger', () => {
  it('Should write one JSON object per line with level, time, fields and msg, from the level up', () => {
    const { lines, logger, parsed } = capture({ level: 'info', base: { name: 'outbox-relay' } })
    logger.debug('hidden')
    logger.info({ published: 3 }, 'drained')
    logger.error('broken')
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true)
    expect(parsed()).toEqual([
      { level: 'info', time: at.toISOString(), name: 'outbox-relay', published: 3, msg: 'drained' },
      { level: 'error', time: at.toISOString(), name: 'outbox-relay', msg: 'broken' },
    ])
  })

  it('Should write an Error field as its message and keep child bindings', () => {
    const { logger, parsed } = capture()
    logger.child?.({ relayId: 'r1' }).warn({ error: new Error('no broker') }, 'publish failed')
    expect(parsed()[0]).toMatchObject({
      level: 'warn',
      relayId: 'r1',
      error: 'no broker',
      msg: 'publish failed',
    })
  })

  it('Should write nothing when silent, and text lines when asked', () => {
    const silent = capture({ level: 'silent' })
    silent.logger.error('x')
    expect(silent.lines).toEqual([])
    const text = capture({ format: 'text' })
    text.logger.warn({ topic: 'orders' }, 'slow')
    expect(text.lines).toEqual([`${at.toISOString()} WARN  slow topic="orders"\n`])
  })
})

describe('childLogger', () => {
  it('Should add bindings to a logger without child (console-like)', () => {
    const calls: unknown[][] = []
    const record =
      (level: string) =>
      (...args: unknown[]) =>
        calls.push([level, ...args])
    const plain = {
      debug: record('debug'),
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
    }
    const child = childLogger(plain as Logger, { component: 'x' })
    child.info('hello')
    child.error({ code: 1 }, 'bad')
    expect(calls).toEqual([
      ['info', { component: 'x' }, 'hello'],
      ['error', { component: 'x', code: 1 }, 'bad'],
    ])
  })
})

describe('engineLogHooks', () => {
  const batch = {
    relayId: 'r1',
    size: 4,
    claimMs: 1,
    publishMs: 2,
    markMs: 1,
    sends: 1,
    published: 2,
    retried: 1,
    dead: 1,
    held: 0,
    deferred: 0,
    unsettled: 0,
    lostLeases: 0,
    maxAttempts: 0,
  }

  it('Should warn about a failed batch with its error and counts, and keep published batches at debug', () => {
    const { logger, parsed } = capture({ level: 'debug' })
    const hooks = engineLogHooks(logger)
    hooks.onBatch?.({ ...batch, outcome: 'partial', error: 'MESSAGE_TOO_LARGE' })
    hooks.onBatch?.({ ...batch, retried: 0, dead: 0, outcome: 'published' })
    hooks.onDrain?.({ published: 2, retried: 1, dead: 1, remaining: 0, durationMs: 9 })
    expect(parsed().map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'batch partial: MESSAGE_TOO_LARGE'],
      ['debug', 'batch published'],
      ['debug', 'drain done'],
    ])
    expect(parsed()[0]).toMatchObject({ relayId: 'r1', retried: 1, dead: 1 })
  })
})
