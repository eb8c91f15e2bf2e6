/**
 * Part 5: bulk writes. `createMany`, `updateMany` and `deleteMany` of N rows through the extended
 * client on the captured model `Item` (one outbox row per row, written by the capture triggers)
 * vs the plain client on `PlainItem` (same columns, no capture), standalone calls.
 */
import { performance } from 'node:perf_hooks'
import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'
import { freshDatabase, log, sleep } from './lib.js'

export type BulkOp = 'createMany' | 'updateMany' | 'deleteMany'
const OPS: BulkOp[] = ['createMany', 'updateMany', 'deleteMany']

export interface BulkResult {
  rows: number
  rounds: number
  /** Median ms per operation, extension and plain. */
  ms: Record<BulkOp, { extension: number; plain: number }>
  /** Every round's ms, to show the spread. */
  rounds_ms: Record<BulkOp, { extension: number[]; plain: number[] }>
  /** Outbox rows the extension's last round wrote (3 per row: created, updated, deleted). */
  outboxRows: number
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? Number.NaN
}

/** Runs create/update/delete of `rows` rows per variant, `rounds` times, variant order alternating. */
export async function bulkWrites(options: { rows: number; rounds: number }): Promise<BulkResult> {
  const { rows, rounds } = options
  const db = await freshDatabase()
  const base = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })
  const extended = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }).$extends(
    outbox(),
  )
  const data = Array.from({ length: rows }, (_, i) => ({
    sku: `SKU-${i}`,
    name: `Item ${i}`,
    quantity: i % 100,
  }))
  const variants = {
    extension: {
      createMany: () => extended.item.createMany({ data }),
      updateMany: () => extended.item.updateMany({ data: { quantity: { increment: 1 } } }),
      deleteMany: () => extended.item.deleteMany({}),
    },
    plain: {
      createMany: () => base.plainItem.createMany({ data }),
      updateMany: () => base.plainItem.updateMany({ data: { quantity: { increment: 1 } } }),
      deleteMany: () => base.plainItem.deleteMany({}),
    },
  }
  const times: BulkResult['rounds_ms'] = {
    createMany: { extension: [], plain: [] },
    updateMany: { extension: [], plain: [] },
    deleteMany: { extension: [], plain: [] },
  }
  let outboxRows = 0
  try {
    await extended.$outbox.ready()
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['extension', 'plain'] as const) : (['plain', 'extension'] as const)
      for (const variant of order) {
        await db.pool.query('TRUNCATE outbox_event')
        await db.pool.query('VACUUM ANALYZE item, plain_item, outbox_event')
        for (const op of OPS) {
          const t0 = performance.now()
          const { count } = await variants[variant][op]()
          times[op][variant].push(performance.now() - t0)
          if (count !== rows) throw new Error(`${variant} ${op}: ${count} rows instead of ${rows}`)
        }
        if (variant === 'extension') {
          const { rows: n } = await db.pool.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM outbox_event',
          )
          outboxRows = n[0]?.n ?? 0
          if (outboxRows !== 3 * rows)
            throw new Error(`extension wrote ${outboxRows} outbox rows, not ${3 * rows}`)
        }
      }
      log(`  bulk writes ${rows.toLocaleString('en')} rows: round ${r + 1}/${rounds} done`)
    }
    const ms = {} as BulkResult['ms']
    for (const op of OPS) ms[op] = { extension: median(times[op].extension), plain: median(times[op].plain) }
    return { rows, rounds, ms, rounds_ms: times, outboxRows }
  } finally {
    await base.$disconnect()
    await extended.$disconnect()
    await sleep(200)
    await db.drop()
  }
}
