import { Prisma } from '@prisma/client/extension'
import type { Types } from '@prisma/client/runtime/client'
import { type BaseClient, Capture, type HookParams, NO_TIMEOUT } from './capture.js'
import type { OutboxDatamodel } from './datamodel.js'
import { type DeclaredEmitInput, type DeclaredEvents, emitInputOf } from './declared-events.js'
import { type EmitInput, rowForEmit } from './emit.js'
import { OutboxError } from './errors.js'
import { insertRowsStatement } from './events.js'
import {
  adapterSchemaOf,
  checkPrismaInternals,
  interactiveTransactionOf,
  isPrismaPromise,
  runIn,
} from './internals.js'
import { type OutboxOptions, type ResolvedOptions, readHeaders, resolveOptions } from './options.js'

/** What `$outbox` offers on the client and on each transaction client. */
export interface OutboxApi<E extends DeclaredEvents | undefined = undefined> {
  /**
   * Writes a custom event. On a transaction client (`tx.$outbox`) it joins that transaction;
   * on the root client it is a PrismaPromise, so it can also go into `$transaction([...])`.
   * @example
   * await tx.$outbox.emit({ aggregateType: 'payroll', aggregateId: id, type: 'payroll.recalculated', payload })
   * With `options.events`, only declared types with payloads of their schemas:
   * await tx.$outbox.emit({ type: 'payroll.recalculated', aggregateId: id, payload })
   */
  emit(event: [E] extends [DeclaredEvents] ? DeclaredEmitInput<E> : EmitInput): Promise<number>
  /**
   * Checks now that the capture triggers are installed and current, and installs them when not
   * (unless `triggers: 'verify'`). Every client does this once by itself before its first
   * write; call it at start-up to fail fast, or before writing through other clients.
   * @throws OutboxError `OUTBOX_NOT_INSTALLED` naming the model and the SQL to apply
   */
  ready(): Promise<void>
}

type None = Record<never, never>

/**
 * The type of `outbox(...)`: what `$extends` adds to the client's type, i.e. `$outbox` on the
 * client and on transaction clients. (`$transaction` keeps Prisma's own signatures; the override
 * changes how it runs, not what it accepts.)
 */
export type OutboxExtension<E extends DeclaredEvents | undefined = undefined> = (client: BaseClient) => {
  $extends: { extArgs: Types.Extensions.InternalArgs<None, None, None, { $outbox: OutboxApi<E> }> }
}

/** `outbox()` options plus the declared custom events that type `$outbox.emit`. */
export type OutboxOptionsWithEvents<
  ModelName extends string = string,
  E extends DeclaredEvents | undefined = undefined,
> = OutboxOptions<ModelName> & {
  /** Custom event types from `defineEvents(...)`: `emit` then takes only these. */
  events?: E
}

type ModelNames<D extends OutboxDatamodel> = Extract<keyof D['models'], string>

/**
 * Binds the extension to a schema's datamodel (written by `prisma-outbox-generator`), so model
 * names in options are typed. The generated module exports `outbox` made with this.
 *
 * @param datamodel - the generated datamodel (primary keys, relations, `/// @outbox` annotations)
 * @returns `outbox(options)`: a Prisma extension for `prisma.$extends(...)`
 * @example
 * import { outbox } from './generated/outbox/index.js'
 * const prisma = new PrismaClient({ adapter }).$extends(outbox({ models: { Employee: true } }))
 */
export function createOutbox<const D extends OutboxDatamodel>(datamodel: D) {
  return <E extends DeclaredEvents | undefined = undefined>(
    options: OutboxOptionsWithEvents<ModelNames<D>, E> = {},
  ): OutboxExtension<E> => outbox(datamodel, options)
}

/**
 * The outbox extension. Every write of a captured model commits its outbox rows in the same
 * statement, hence the same transaction: capture triggers in the database write them (the
 * extension installs them before a client's first write, or only verifies them with
 * `triggers: 'verify'`). Queries reach Prisma unchanged, so results, errors, timeouts and other
 * extensions behave as without the outbox. Options are checked here, once.
 *
 * @param datamodel - the generated datamodel
 * @param [options.models] - models to capture besides those annotated `/// @outbox`
 * @param [options.outboxModel='OutboxEvent'] - the outbox table's model
 * @param [options.schema] - schema of the outbox table and the captured tables (default: the
 *   driver adapter's `schema`, else the connection's `search_path`)
 * @param [options.triggers='install'] - `install` the capture triggers when missing or out of
 *   date, or only `verify` them
 * @param [options.headers] - extra headers for every event, e.g. a `traceparent`
 * @throws OutboxError `OUTBOX_INVALID_OPTIONS` naming what is wrong
 */
export function outbox<E extends DeclaredEvents | undefined = undefined>(
  datamodel: OutboxDatamodel,
  options: OutboxOptionsWithEvents<string, E> = {},
): OutboxExtension<E> {
  const { events, ...rest } = options ?? {}
  const resolved = resolveOptions(datamodel, rest)
  if (
    events !== undefined &&
    (typeof events !== 'object' || events === null || Object.keys(events).length === 0)
  ) {
    throw new OutboxError(
      'OUTBOX_INVALID_OPTIONS',
      'options.events must be the non-empty result of defineEvents({ ... })',
    )
  }
  return Prisma.defineExtension((client: BaseClient) =>
    extendClient(client, datamodel, resolved, events),
  ) as unknown as OutboxExtension<E>
}

/** One client with the outbox: `$outbox`, the `$transaction` override and the capture of writes. */
function extendClient(
  client: BaseClient,
  datamodel: OutboxDatamodel,
  resolved: ResolvedOptions,
  events: DeclaredEvents | undefined,
) {
  checkPrismaInternals(client)
  const capture = new Capture(client, datamodel, resolved, captureSchema(client, resolved))
  const ready = () => capture.checkNow()
  const emitOn = (target: BaseClient) => (input: unknown) => {
    const event = events ? emitInputOf(events, input) : (input as EmitInput)
    const row = rowForEmit(event, readHeaders(resolved.headers))
    return target.$executeRawUnsafe(...insertRowsStatement(capture.outboxTable, [row]))
  }
  /** The transaction client handed to callbacks, with `$outbox` bound to its transaction. */
  const withOutbox = (tx: BaseClient): BaseClient => {
    const api: OutboxApi<undefined> = { emit: emitOn(tx), ready }
    return new Proxy(tx, {
      get: (target, prop) => (prop === '$outbox' ? api : Reflect.get(target, prop, target)),
    })
  }

  return client.$extends({
    name: 'prisma-outbox',
    client: {
      $outbox: { emit: emitOn(client), ready } satisfies OutboxApi<undefined>,
      $transaction: outboxTransaction(client.$transaction, resolved, withOutbox),
    },
    query: {
      $allModels: {
        $allOperations(params: unknown) {
          return capture.onQuery(params as unknown as HookParams)
        },
      },
    },
  })
}

/**
 * The schema of the outbox and the captured tables: `options.schema`, else the driver adapter's.
 * @throws OutboxError `OUTBOX_INVALID_OPTIONS` when both are given and differ
 */
function captureSchema(client: BaseClient, resolved: ResolvedOptions): string | undefined {
  const adapterSchema = adapterSchemaOf(client)
  if (resolved.schema !== undefined && adapterSchema !== undefined && resolved.schema !== adapterSchema) {
    throw new OutboxError(
      'OUTBOX_INVALID_OPTIONS',
      `options.schema "${resolved.schema}" differs from the driver adapter's schema "${adapterSchema}", where the client writes its rows; the outbox and the capture triggers must be in that schema`,
    )
  }
  return resolved.schema ?? adapterSchema
}

/**
 * The client's `$transaction`. Interactive callbacks get a client with `$outbox`. With the
 * `headers` option, a batch runs as one interactive transaction (with no timeout of its own), so
 * the headers of each write reach its events; anything Prisma would refuse goes to Prisma unchanged.
 */
function outboxTransaction(
  baseTransaction: (this: unknown, ...args: unknown[]) => Promise<unknown>,
  resolved: ResolvedOptions,
  withOutbox: (tx: BaseClient) => BaseClient,
) {
  return function $transaction(this: BaseClient, input: unknown, txOptions?: unknown) {
    if (typeof input === 'function') {
      const callback = input as (tx: BaseClient) => Promise<unknown>
      return baseTransaction.call(this, (tx: BaseClient) => callback(withOutbox(tx)), txOptions)
    }
    if (!resolved.headers || !Array.isArray(input) || !input.every(isPrismaPromise)) {
      return baseTransaction.call(this, input, txOptions)
    }
    return baseTransaction.call(
      this,
      async (tx: BaseClient) => {
        const itx = interactiveTransactionOf(tx)
        const results: unknown[] = []
        for (const request of input) results.push(await runIn(request as PromiseLike<unknown>, itx))
        return results
      },
      { ...NO_TIMEOUT, ...(txOptions as object | undefined) },
    )
  }
}
