import { describe, expect, it } from 'vitest'
import type { PoolLike, QueryResultLike } from '../core/db.js'
import type { Publisher } from '../core/publisher.js'
import { zeroCounts } from './batches.js'
import { createStreamerContext, type StreamerContext, streamSettings } from './context.js'
import { createMarkQueue, MARK_BATCHES, type MarkQueue, marksSettled, queueMark } from './marks.js'
import type { PublishedChunk } from './publish.js'

/** A pool whose statements resolve when the test says so; records the ids each one marks. */
function fakePool() {
  const statements: { ids: string[]; done: () => void; failOnce?: boolean }[] = []
  let failNext = 0
  const pool: PoolLike = {
    query(_text: string, values?: unknown[]): Promise<QueryResultLike> {
      const ids = (values?.[0] as string[]) ?? []
      if (failNext > 0) {
        failNext--
        return Promise.reject(Object.assign(new Error('connection terminated'), { code: '57P01' }))
      }
      return new Promise((resolve) => {
        statements.push({ ids, done: () => resolve({ rows: [], rowCount: ids.length }) })
      })
    },
    connect: () => Promise.reject(new Error('not used')),
  }
  return { pool, statements, failNextStatements: (n: number) => (failNext = n) }
}

function context(pool: PoolLike, batchSize: number): StreamerContext {
  const options = {
    connectionString: 'postgresql://unused',
    pool,
    publisher: {} as Publisher,
    batchSize,
    preparedStatements: false,
    retry: { baseMs: 1, maxMs: 1 },
  }
  return createStreamerContext(options, streamSettings(options, 'outbox_relay'))
}

const published = (...ids: string[]): PublishedChunk => ({
  outcomes: ids.map((id) => ({ id, outcome: 'published' as const })),
  skipped: 0,
})

const tick = () => new Promise((resolve) => setTimeout(resolve, 0))

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 2))
  expect(check()).toBe(true)
}

function queue(
  ctx: StreamerContext,
  marks: MarkQueue,
  chunk: PublishedChunk,
  finished: string[],
  name: string,
) {
  queueMark(ctx, marks, { chunk, total: zeroCounts(), finish: () => finished.push(name) })
}

describe('stream marks', () => {
  it('marks the chunks published while a mark runs in one statement, and confirms them in order', async () => {
    const { pool, statements } = fakePool()
    const ctx = context(pool, 2)
    const marks = createMarkQueue()
    const finished: string[] = []
    queue(ctx, marks, published('a', 'b'), finished, 'first')
    await until(() => statements.length === 1)
    queue(ctx, marks, published('c'), finished, 'second')
    queue(ctx, marks, published('d', 'e'), finished, 'third')
    await tick()
    expect(finished).toEqual([])
    statements[0]?.done()
    await until(() => statements.length === 2)
    expect(finished).toEqual(['first'])
    expect(statements[1]?.ids).toEqual(['c', 'd', 'e'])
    statements[1]?.done()
    await marksSettled(marks)
    expect(finished).toEqual(['first', 'second', 'third'])
    expect(ctx.counters.published).toBe(5)
    expect(marks.rows).toBe(0)
  })

  it('marks a chunk queued while the loop is ending, at any microtask', async () => {
    for (let depth = 0; depth < 8; depth++) {
      const { pool, statements } = fakePool()
      const ctx = context(pool, 1)
      const marks = createMarkQueue()
      const finished: string[] = []
      queue(ctx, marks, published('a'), finished, 'first')
      await until(() => statements.length === 1)
      statements[0]?.done()
      let chain = Promise.resolve()
      for (let i = 0; i < depth; i++) chain = chain.then(() => {})
      await chain
      queue(ctx, marks, published('b'), finished, 'second')
      await until(() => statements.length === 2)
      statements[1]?.done()
      await marksSettled(marks)
      expect(finished, `queued after ${depth} microtasks`).toEqual(['first', 'second'])
    }
  })

  it('lets a small mark wait briefly for more chunks, and goes at once when batchSize outcomes wait', async () => {
    const { pool, statements } = fakePool()
    const ctx = context(pool, 3)
    const marks = createMarkQueue()
    const finished: string[] = []
    queue(ctx, marks, published('a'), finished, 'first')
    await tick()
    queue(ctx, marks, published('b'), finished, 'second')
    expect(statements).toHaveLength(0)
    queue(ctx, marks, published('c'), finished, 'third')
    await until(() => statements.length === 1)
    expect(statements[0]?.ids).toEqual(['a', 'b', 'c'])
    statements[0]?.done()
    await marksSettled(marks)
    expect(finished).toEqual(['first', 'second', 'third'])
  })

  it('never puts more than MARK_BATCHES batches of outcomes into one statement, and never splits a chunk', async () => {
    const { pool, statements } = fakePool()
    const ctx = context(pool, 2)
    const marks = createMarkQueue()
    const finished: string[] = []
    queue(ctx, marks, published('x0', 'x1'), finished, 'x')
    await until(() => statements.length === 1)
    const ids = Array.from({ length: MARK_BATCHES * 2 + 1 }, (_, i) => `r${i}`)
    for (let i = 0; i < ids.length; i += 2)
      queue(ctx, marks, published(...ids.slice(i, i + 2)), finished, `c${i}`)
    statements[0]?.done()
    await until(() => statements.length === 2)
    expect(statements[1]?.ids).toEqual(ids.slice(0, MARK_BATCHES * 2))
    statements[1]?.done()
    await until(() => statements.length === 3)
    expect(statements[2]?.ids).toEqual(ids.slice(MARK_BATCHES * 2))
    statements[2]?.done()
    await marksSettled(marks)
    expect(finished).toHaveLength(1 + Math.ceil(ids.length / 2))
  })

  it('retries a mark the database refused, confirming nothing until it is made', async () => {
    const { pool, statements, failNextStatements } = fakePool()
    const ctx = context(pool, 1)
    const marks = createMarkQueue()
    const finished: string[] = []
    const errors: unknown[] = []
    ctx.options.onError = (error) => errors.push(error)
    failNextStatements(2)
    queue(ctx, marks, published('a'), finished, 'first')
    await until(() => statements.length === 1)
    expect(errors).toHaveLength(2)
    expect(finished).toEqual([])
    statements[0]?.done()
    await marksSettled(marks)
    expect(finished).toEqual(['first'])
  })

  it('stops waiting and making marks once the streamer stops', async () => {
    const { pool, statements, failNextStatements } = fakePool()
    const ctx = context(pool, 5)
    const marks = createMarkQueue()
    const finished: string[] = []
    failNextStatements(1_000)
    queue(ctx, marks, published('a'), finished, 'first')
    await until(() => (ctx.lastError ?? '').includes('connection terminated'))
    ctx.controller.abort()
    await marksSettled(marks)
    expect(finished).toEqual([])
    expect(marks.failed).toBeDefined()
    queue(ctx, marks, published('b'), finished, 'second')
    expect(marks.running).toBeUndefined()
    expect(statements).toHaveLength(0)
  })
})
