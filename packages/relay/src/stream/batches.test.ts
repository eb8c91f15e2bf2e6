import { describe, expect, it } from 'vitest'
import { queuedEvents, slices, takeBatch } from './batches.js'
import type { StreamRow, Transaction } from './rows.js'

const row = (id: string) => ({ id }) as StreamRow
const tx = (endLsn: bigint, ...ids: string[]): Transaction => ({ rows: ids.map(row), endLsn })
const ids = (rows: StreamRow[]) => rows.map((r) => r.id)

describe('stream batches', () => {
  it('takes whole transactions up to the batch size and confirms the last one taken', () => {
    const queue = [tx(10n, 'a', 'b'), tx(20n, 'c'), tx(30n, 'd', 'e')]
    const batch = takeBatch(queue, 3)
    expect(ids(batch.rows)).toEqual(['a', 'b', 'c'])
    expect(batch.endLsn).toBe(20n)
    expect(queue.map((t) => t.endLsn)).toEqual([30n])
  })

  it('takes a transaction bigger than the batch size alone, and empty ones along', () => {
    const queue = [tx(10n, 'a', 'b', 'c'), tx(20n, 'd')]
    expect(ids(takeBatch(queue, 2).rows)).toEqual(['a', 'b', 'c'])
    const empties = [tx(30n), tx(40n), tx(50n, 'e')]
    const batch = takeBatch(empties, 1)
    expect(ids(batch.rows)).toEqual(['e'])
    expect(batch.endLsn).toBe(50n)
  })

  it('cuts rows into pieces of the batch size, one empty piece for no rows', () => {
    expect(slices(['a', 'b', 'c', 'd', 'e'].map(row), 2).map(ids)).toEqual([['a', 'b'], ['c', 'd'], ['e']])
    expect(slices(['a', 'b'].map(row), 2).map(ids)).toEqual([['a', 'b']])
    expect(slices([], 2)).toEqual([[]])
  })

  it('counts queued events up to the batch size', () => {
    const queue = [tx(10n, 'a', 'b'), tx(20n, 'c', 'd'), tx(30n, 'e')]
    expect(queuedEvents(queue, 3)).toBe(4)
    expect(queuedEvents(queue, 100)).toBe(5)
    expect(queuedEvents([], 3)).toBe(0)
  })
})
