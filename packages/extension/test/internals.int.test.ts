/**
 * Upgrade gate: pins the private Prisma Client behaviour src/internals.ts relies on. If one of
 * these fails after a Prisma upgrade, the extension could write outbox rows outside the caller's
 * transaction; fix src/internals.ts (and this file) before widening the peer dependency range.
 */

import { PrismaPg } from '@prisma/adapter-pg'
import type { TestDatabase } from '@prisma-outbox/devkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adapterSchemaOf } from '../src/internals.js'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'
import { basePrisma, dispose, testDatabase } from './helpers.js'

const SCOPE_CONTEXT = Symbol.for('prisma.client.transaction.scope_context')

let db: TestDatabase
let base: PrismaClient
/** What the query hook saw as `__internalParams.transaction`, per call. */
let seen: unknown[] = []

function probeClient(client: PrismaClient) {
  return client.$extends({
    query: {
      $allModels: {
        $allOperations(params) {
          const internal = (
            params as unknown as { __internalParams?: { transaction?: Record<string, unknown> } }
          ).__internalParams
          const tx = internal?.transaction
          seen.push(
            internal === undefined
              ? 'NO __internalParams'
              : tx === undefined
                ? null
                : { kind: tx.kind, id: tx.id, ...('index' in tx ? { index: tx.index } : {}) },
          )
          return params.query(params.args)
        },
      },
    },
  })
}

let probe: ReturnType<typeof probeClient>

beforeAll(async () => {
  db = await testDatabase()
  base = basePrisma(db)
  probe = probeClient(base)
})

afterAll(async () => {
  await dispose(db, base)
})

describe('Prisma internals the outbox extension depends on', () => {
  it('query hooks receive __internalParams with transaction undefined for a standalone call', async () => {
    seen = []
    await probe.auditNote.count()
    expect(
      seen,
      'query extensions no longer receive __internalParams (src/internals.ts transactionOf)',
    ).toEqual([null])
  })

  it('__internalParams.transaction is { kind: "itx", id } inside an interactive transaction', async () => {
    seen = []
    await probe.$transaction(async (tx) => {
      await tx.auditNote.count()
    })
    const [tx] = seen as { kind?: unknown; id?: unknown }[]
    expect(tx?.kind, '__internalParams.transaction.kind inside $transaction(async tx => ...) changed').toBe(
      'itx',
    )
    expect(
      typeof tx?.id,
      '__internalParams.transaction.id of an interactive transaction is no longer a string',
    ).toBe('string')
  })

  it('__internalParams.transaction is { kind: "itx" } inside a nested tx.$transaction (savepoint)', async () => {
    seen = []
    await probe.$transaction(async (tx) => {
      await tx.$transaction(async (inner) => {
        await inner.auditNote.count()
      })
    })
    expect((seen[0] as { kind?: unknown })?.kind, 'nested transactions no longer report kind "itx"').toBe(
      'itx',
    )
  })

  it('__internalParams.transaction is { kind: "batch", id, index } inside $transaction([...])', async () => {
    seen = []
    await probe.$transaction([probe.auditNote.count(), probe.auditNote.count()])
    expect(seen, 'batch transactions no longer report kind "batch" with index').toMatchObject([
      { kind: 'batch', index: 0 },
      { kind: 'batch', index: 1 },
    ])
  })

  it('PrismaPromises of model and raw queries have requestTransaction()', () => {
    const model = base.auditNote.count() as unknown as { requestTransaction?: unknown }
    const raw = base.$executeRawUnsafe('SELECT 1') as unknown as { requestTransaction?: unknown }
    expect(
      typeof model.requestTransaction,
      'model PrismaPromise lost requestTransaction (src/internals.ts runIn)',
    ).toBe('function')
    expect(
      typeof raw.requestTransaction,
      'raw PrismaPromise lost requestTransaction (src/internals.ts runIn)',
    ).toBe('function')
  })

  it('the interactive transaction client carries scope_context with a string txId', async () => {
    await base.$transaction(async (tx) => {
      const scope = (tx as unknown as Record<symbol, { txId?: unknown } | undefined>)[SCOPE_CONTEXT]
      expect(scope, 'tx client lost Symbol.for("prisma.client.transaction.scope_context")').toBeDefined()
      expect(typeof scope?.txId, 'scope_context.txId is no longer a string (src/internals.ts)').toBe('string')
    })
  })

  it('requestTransaction({ kind: "itx", id }) runs a query inside that transaction (and its rollback)', async () => {
    const marker = `internals-${Date.now()}`
    await expect(
      base.$transaction(async (tx) => {
        const txId = (tx as unknown as Record<symbol, { txId: string }>)[SCOPE_CONTEXT]?.txId
        const promise = base.auditNote.create({ data: { text: marker } }) as unknown as {
          requestTransaction(tx: unknown): PromiseLike<unknown>
        }
        await promise.requestTransaction({ kind: 'itx', id: txId })
        const inside = await tx.auditNote.count({ where: { text: marker } })
        expect(inside, 'a query sent with requestTransaction is not visible inside the transaction').toBe(1)
        throw new Error('rollback')
      }),
    ).rejects.toThrow('rollback')
    expect(
      await base.auditNote.count({ where: { text: marker } }),
      'requestTransaction escaped the transaction',
    ).toBe(0)
  })

  it('query(args, __internalParams) accepts the internal params back and joins their transaction', async () => {
    const marker = `query-params-${Date.now()}`
    let txId = ''
    const joining = base.$extends({
      query: {
        auditNote: {
          create({ args, query, ...rest }) {
            const internal = (rest as unknown as { __internalParams: Record<string, unknown> })
              .__internalParams
            const run = query as unknown as (a: unknown, p: unknown) => Promise<unknown>
            return run(args, { ...internal, transaction: { kind: 'itx', id: txId } })
          },
        },
      },
    })
    await expect(
      base.$transaction(async (tx) => {
        txId = (tx as unknown as Record<symbol, { txId: string }>)[SCOPE_CONTEXT]?.txId as string
        await joining.auditNote.create({ data: { text: marker } })
        throw new Error('rollback')
      }),
    ).rejects.toThrow('rollback')
    expect(
      await base.auditNote.count({ where: { text: marker } }),
      'query(args, internalParams) no longer honours internalParams.transaction',
    ).toBe(0)
  })
})

describe('checked when the extension is applied', () => {
  it.each(['7.9.3', '8.0.0'])(
    'a client of Prisma %s fails at $extends, naming the version found',
    (version) => {
      const other = basePrisma(db)
      try {
        ;(other as unknown as { _clientVersion: string })._clientVersion = version
        expect(() => other.$extends(outbox())).toThrow(
          expect.objectContaining({
            code: 'OUTBOX_PRISMA_INTERNALS',
            message: expect.stringContaining(version),
          }),
        )
      } finally {
        void other.$disconnect()
      }
    },
  )

  it('the client keeps its adapter factory, whose options carry the schema', () => {
    const adapter = new PrismaPg({ connectionString: db.url }, { schema: 'app' })
    const client = new PrismaClient({ adapter })
    expect((client as unknown as { _engineConfig: { adapter: unknown } })._engineConfig.adapter).toBe(adapter)
    expect(adapterSchemaOf(client)).toBe('app')
    expect(adapterSchemaOf(base)).toBeUndefined()
  })
})
