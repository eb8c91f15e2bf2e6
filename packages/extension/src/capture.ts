/**
 * The write path: for each write of a captured model, run the write and insert its outbox rows
 * in the same interactive transaction (the caller's, or one opened for a standalone call).
 * @module
 * @internal
 */
import type { OutboxDatamodel, OutboxModelInfo } from './datamodel.js'
import { OutboxError } from './errors.js'
import {
  type ChangeKind,
  insertRowsStatement,
  type OutboxRow,
  primaryKeyFilter,
  primaryKeyWhere,
  rowForChange,
} from './events.js'
import {
  type InteractiveTransaction,
  interactiveTransactionOf,
  internalParamsOf,
  runIn,
  transactionOf,
} from './internals.js'
import { assertNoCapturedNestedWrites } from './nested.js'
import { checkHeaders, type ResolvedOptions } from './options.js'

export const WRITE_OPERATIONS = new Set([
  'create',
  'createMany',
  'createManyAndReturn',
  'update',
  'updateMany',
  'updateManyAndReturn',
  'upsert',
  'delete',
  'deleteMany',
])

type AnyRecord = Record<string, unknown>
type Delegate = Record<string, (args?: unknown) => PromiseLike<unknown>>
// biome-ignore lint/suspicious/noExplicitAny: the base client's shape depends on the user's schema
export type BaseClient = any

export interface HookParams {
  model?: string
  operation: string
  args: AnyRecord
  query: (args: unknown, internalParams?: unknown) => PromiseLike<unknown>
}

/** A captured model whose rows a delete changes through a referential action. */
interface Cascade {
  model: string
  fields: readonly string[]
  references: readonly string[]
}

const PROJECTION_KEYS = ['select', 'include', 'omit'] as const

export class Capture {
  private readonly capturedNames: ReadonlySet<string>

  constructor(
    private readonly client: BaseClient,
    private readonly datamodel: OutboxDatamodel,
    private readonly options: ResolvedOptions,
  ) {
    this.capturedNames = new Set(options.captured.keys())
  }

  /** The `$allModels.$allOperations` query hook. */
  async onQuery(params: HookParams): Promise<unknown> {
    const { model, operation, args } = params
    if (!model || !WRITE_OPERATIONS.has(operation)) return params.query(args)
    const info = this.datamodel.models[model]
    if (!info) return params.query(args)
    this.checkNestedWrites(model, operation, args)
    const cascades =
      operation === 'delete' || operation === 'deleteMany' ? this.cascadingRelations(model) : []
    const captured = this.capturedNames.has(model)
    if (!captured && cascades.length === 0) return params.query(args)

    const transaction = transactionOf(params)
    if (transaction?.kind === 'itx') {
      return this.write(params, info, { kind: 'itx', id: String(transaction.id) }, cascades)
    }
    if (transaction?.kind === 'batch') {
      throw new OutboxError(
        'OUTBOX_PRISMA_INTERNALS',
        `${model}.${operation} ran in a batch $transaction that the outbox extension did not open; apply outbox() as the last $extends so its $transaction is the one called`,
      )
    }
    return this.client.$transaction((tx: object) =>
      this.write(params, info, interactiveTransactionOf(tx), cascades),
    )
  }

  private checkNestedWrites(model: string, operation: string, args: AnyRecord): void {
    if (operation === 'upsert') {
      assertNoCapturedNestedWrites(
        this.datamodel,
        this.capturedNames,
        model,
        args.create,
        `${model}.upsert.create`,
      )
      assertNoCapturedNestedWrites(
        this.datamodel,
        this.capturedNames,
        model,
        args.update,
        `${model}.upsert.update`,
      )
    } else {
      assertNoCapturedNestedWrites(
        this.datamodel,
        this.capturedNames,
        model,
        args.data,
        `${model}.${operation}.data`,
      )
    }
  }

  /** Captured models whose rows the database changes by itself when a `model` row is deleted. */
  private cascadingRelations(model: string): Cascade[] {
    const out: Cascade[] = []
    for (const child of this.capturedNames) {
      for (const relation of Object.values(this.datamodel.models[child]?.relations ?? {})) {
        if (relation.model !== model || !relation.holdsForeignKey) continue
        if (
          relation.onDelete === 'Cascade' ||
          relation.onDelete === 'SetNull' ||
          relation.onDelete === 'SetDefault'
        ) {
          out.push({ model: child, fields: relation.fields, references: relation.references })
        }
      }
    }
    return out
  }

  private async write(
    params: HookParams,
    info: OutboxModelInfo,
    tx: InteractiveTransaction,
    cascades: Cascade[],
  ): Promise<unknown> {
    const model = params.model as string
    const args = params.args
    const delegate = this.delegate(model)
    const internal = { ...internalParamsOf(params), transaction: tx }
    const run = (a: unknown) => params.query(a, internal) as Promise<unknown>
    const inTx = <T>(p: PromiseLike<T>) => runIn(p, tx)
    const captured = this.capturedNames.has(model)
    const { projection, rest } = splitProjection(args)
    const changes: { kind: ChangeKind; record: AnyRecord }[] = []
    let result: unknown

    switch (params.operation) {
      case 'create':
      case 'update':
      case 'upsert': {
        let kind: ChangeKind = params.operation === 'update' ? 'updated' : 'created'
        if (params.operation === 'upsert') {
          // Read first, in the same transaction, to tell an insert from an update.
          const existing = await inTx(delegate.findUnique?.({ where: args.where }) as PromiseLike<unknown>)
          kind = existing ? 'updated' : 'created'
        }
        const record = (await run(rest)) as AnyRecord
        changes.push({ kind, record })
        result = projection
          ? await inTx(
              delegate.findUniqueOrThrow?.({
                where: primaryKeyWhere(info, record),
                ...projection,
              }) as PromiseLike<unknown>,
            )
          : record
        break
      }
      case 'delete': {
        if (cascades.length > 0) {
          // The record itself (not the caller's unique `where`, which findMany may not accept).
          const target = await inTx(
            delegate.findUnique?.({ where: args.where }) as PromiseLike<AnyRecord | null>,
          )
          await this.assertNoCascade(model, cascades, target ? [target] : [], tx)
        }
        // The caller's projection is read before the row is gone.
        const shaped = projection
          ? await inTx(delegate.findUnique?.({ where: args.where, ...projection }) as PromiseLike<unknown>)
          : undefined
        const record = (await run(rest)) as AnyRecord
        changes.push({ kind: 'deleted', record })
        result = projection ? shaped : record
        break
      }
      case 'createMany':
      case 'updateMany': {
        const andReturn = params.operation === 'createMany' ? 'createManyAndReturn' : 'updateManyAndReturn'
        const records = (await inTx(delegate[andReturn]?.(rest) as PromiseLike<AnyRecord[]>)) ?? []
        for (const record of records)
          changes.push({ kind: params.operation === 'createMany' ? 'created' : 'updated', record })
        result = { count: records.length }
        break
      }
      case 'createManyAndReturn':
      case 'updateManyAndReturn': {
        const records = (await run(rest)) as AnyRecord[]
        const kind = params.operation === 'createManyAndReturn' ? 'created' : 'updated'
        for (const record of records) changes.push({ kind, record })
        if (!projection) result = records
        else if (!readsRelations(info, projection)) result = records.map((r) => project(r, projection))
        else {
          // Relations can only come from the database: read each record back, in order.
          const shaped: unknown[] = []
          for (const r of records) {
            const where = primaryKeyWhere(info, r)
            shaped.push(
              await inTx(delegate.findUniqueOrThrow?.({ where, ...projection }) as PromiseLike<unknown>),
            )
          }
          result = shaped
        }
        break
      }
      case 'deleteMany': {
        const records = (await inTx(
          delegate.findMany?.({ where: args.where, take: args.limit }) as PromiseLike<AnyRecord[]>,
        )) as AnyRecord[]
        if (records.length === 0) return { count: 0 }
        await this.assertNoCascade(model, cascades, records, tx)
        const deleted = (await inTx(
          delegate.deleteMany?.({
            where: { OR: records.map((r) => primaryKeyFilter(info, r)) },
          }) as PromiseLike<{
            count: number
          }>,
        )) as { count: number }
        if (deleted.count !== records.length) {
          throw new OutboxError(
            'OUTBOX_CONCURRENT_CHANGE',
            `${model}.deleteMany: ${records.length - deleted.count} of ${records.length} matching records were deleted by another transaction meanwhile; nothing was deleted, retry the transaction`,
          )
        }
        for (const record of records) changes.push({ kind: 'deleted', record })
        result = deleted
        break
      }
      default:
        return run(args)
    }

    if (captured && changes.length > 0) await this.insert(model, info, changes, tx)
    return result
  }

  /** Refuses a delete that would make the database delete or update captured rows by itself. */
  private async assertNoCascade(
    model: string,
    cascades: Cascade[],
    parentRecords: AnyRecord[],
    tx: InteractiveTransaction,
  ): Promise<void> {
    if (parentRecords.length === 0) return
    for (const cascade of cascades) {
      const where = {
        OR: parentRecords.map((p) =>
          Object.fromEntries(cascade.fields.map((f, i) => [f, p[cascade.references[i] as string]])),
        ),
      }
      const count = (await runIn(
        this.delegate(cascade.model).count?.({ where }) as PromiseLike<number>,
        tx,
      )) as number
      if (count > 0) {
        throw new OutboxError(
          'OUTBOX_UNSUPPORTED_WRITE',
          `deleting ${model} would make the database change ${count} ${cascade.model} record(s) through a referential action (onDelete), which produces no outbox event; delete or update those ${cascade.model} records first, in the same transaction`,
        )
      }
    }
  }

  private async insert(
    model: string,
    info: OutboxModelInfo,
    changes: { kind: ChangeKind; record: AnyRecord }[],
    tx: InteractiveTransaction,
  ): Promise<void> {
    const captured = this.options.captured.get(model)
    if (!captured) return
    const headers = checkHeaders(this.options.headers?.(), 'options.headers()')
    const rows: OutboxRow[] = changes.map((c) =>
      rowForChange(model, info, captured, c.kind, c.record, headers),
    )
    await this.insertRows(rows, tx)
  }

  /** Inserts outbox rows inside `tx`. */
  insertRows(rows: OutboxRow[], tx: InteractiveTransaction): Promise<unknown> {
    return runIn(this.client.$executeRawUnsafe(...insertRowsStatement(this.options.outboxTable, rows)), tx)
  }

  private delegate(model: string): Delegate {
    return this.client[model.charAt(0).toLowerCase() + model.slice(1)] as Delegate
  }
}

function splitProjection(args: AnyRecord): { projection?: AnyRecord; rest: AnyRecord } {
  const rest: AnyRecord = { ...args }
  let projection: AnyRecord | undefined
  for (const key of PROJECTION_KEYS) {
    if (args[key] !== undefined) {
      projection ??= {}
      projection[key] = args[key]
      delete rest[key]
    }
  }
  return { projection, rest }
}

/** Whether a caller's projection asks for relations (`include`, or a relation or `_count` in `select`). */
function readsRelations(info: OutboxModelInfo, projection: AnyRecord): boolean {
  if (projection.include) return true
  const select = projection.select as AnyRecord | undefined
  return Object.keys(select ?? {}).some(
    (f) => info.fields[f]?.kind !== 'scalar' && info.fields[f]?.kind !== 'enum',
  )
}

/** Applies a scalar `select`/`omit` to a record in memory (for the *ManyAndReturn operations). */
function project(record: AnyRecord, projection: AnyRecord): AnyRecord {
  const select = projection.select as AnyRecord | undefined
  const omit = projection.omit as AnyRecord | undefined
  const out: AnyRecord = {}
  for (const [field, value] of Object.entries(record)) {
    if (select && select[field] !== true) continue
    if (omit && omit[field] === true) continue
    out[field] = value
  }
  return out
}
