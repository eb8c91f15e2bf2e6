/**
 * Part 2: write overhead of the extension. N creates of the annotated model `Item` through
 *  - the extended client (`outbox()` from the generated `bench/generated/outbox`),
 *  - a hand-written interactive `$transaction` (create + `outboxEvent.create`),
 *  - a plain create (no event at all),
 * the last two on `PlainItem`, the same columns without capture triggers,
 * standalone and inside a caller's interactive `$transaction`.
 */
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'
import { freshDatabase, log, sleep } from './lib.js'

type Variant = 'extension' | 'handwritten' | 'plain'
type Mode = 'standalone' | 'in-transaction'

export interface WriteResult {
  writes: number
  rounds: number
  /** µs per write, by mode and variant (total time of all rounds / writes). */
  us: Record<Mode, Record<Variant, number>>
  /** Per round µs, to show the spread. */
  rounds_us: Record<Mode, Record<Variant, number[]>>
  outboxRows: number
}

const data = (i: number) => ({ sku: `SKU-${i}`, name: `Item ${i}`, quantity: i % 100 })

/** What the extension writes for a create, by hand: the payload is the created record. */
function outboxRowFor(item: { id: number; sku: string; name: string; quantity: number; createdAt: Date }) {
  return {
    // The extension uses UUIDv7; the hand-written version uses what a user would reach for.
    id: randomUUID(),
    aggregatetype: 'item',
    aggregateid: String(item.id),
    type: 'item.created',
    topic: 'outbox.event.item',
    payload: { ...item, createdAt: item.createdAt.toISOString() },
  }
}

/**
 * Runs `writes` creates per variant and mode, split into `rounds` rounds; the variant order
 * rotates each round so slow drift (autovacuum, other load) spreads over all variants. Each
 * variant gets `warmup` unmeasured writes first.
 */
export async function writeOverhead(options: {
  writes: number
  rounds: number
  warmup: number
}): Promise<WriteResult> {
  const { writes, rounds, warmup } = options
  const db = await freshDatabase()
  const base = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })
  const extended = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }).$extends(
    outbox(),
  )
  let n = 0
  const ops: Record<Mode, Record<Variant, () => Promise<unknown>>> = {
    standalone: {
      extension: () => extended.item.create({ data: data(n++) }),
      handwritten: () =>
        base.$transaction(async (tx) => {
          const item = await tx.plainItem.create({ data: data(n++) })
          await tx.outboxEvent.create({ data: outboxRowFor(item) })
        }),
      plain: () => base.plainItem.create({ data: data(n++) }),
    },
    'in-transaction': {
      extension: () => extended.$transaction(async (tx) => tx.item.create({ data: data(n++) })),
      handwritten: () =>
        base.$transaction(async (tx) => {
          const item = await tx.plainItem.create({ data: data(n++) })
          await tx.outboxEvent.create({ data: outboxRowFor(item) })
        }),
      plain: () => base.$transaction(async (tx) => tx.plainItem.create({ data: data(n++) })),
    },
  }
  const variants: Variant[] = ['extension', 'handwritten', 'plain']
  const modes: Mode[] = ['standalone', 'in-transaction']
  const totals = {
    standalone: { extension: 0, handwritten: 0, plain: 0 },
    'in-transaction': { extension: 0, handwritten: 0, plain: 0 },
  }
  const perRound: WriteResult['rounds_us'] = {
    standalone: { extension: [], handwritten: [], plain: [] },
    'in-transaction': { extension: [], handwritten: [], plain: [] },
  }
  try {
    await base.$connect()
    await extended.$connect()
    // Install the capture triggers before timing (each client does it at its first write).
    await extended.$outbox.ready()
    for (const mode of modes) for (const v of variants) for (let i = 0; i < warmup; i++) await ops[mode][v]()
    const perRoundWrites = Math.ceil(writes / rounds)
    for (let r = 0; r < rounds; r++) {
      for (const mode of modes) {
        const order = variants.map((_, i) => variants[(i + r) % variants.length] as Variant)
        for (const v of order) {
          const op = ops[mode][v]
          const t0 = performance.now()
          for (let i = 0; i < perRoundWrites; i++) await op()
          const ms = performance.now() - t0
          totals[mode][v] += ms
          perRound[mode][v].push((ms * 1000) / perRoundWrites)
        }
      }
      log(`  write overhead: round ${r + 1}/${rounds} done (${perRoundWrites} writes per variant and mode)`)
    }
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox_event')
    const us = {
      standalone: { extension: 0, handwritten: 0, plain: 0 },
      'in-transaction': { extension: 0, handwritten: 0, plain: 0 },
    }
    for (const mode of modes)
      for (const v of variants) us[mode][v] = (totals[mode][v] * 1000) / (perRoundWrites * rounds)
    return { writes: perRoundWrites * rounds, rounds, us, rounds_us: perRound, outboxRows: rows[0]?.n ?? 0 }
  } finally {
    await base.$disconnect()
    await extended.$disconnect()
    await sleep(200)
    await db.drop()
  }
}
