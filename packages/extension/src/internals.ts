/**
 * Everything that relies on Prisma Client internals lives here, pinned to the versions in
 * package.json (`peerDependencies`) and checked by test/internals.int.test.ts, so an upgrade
 * that changes them fails loudly instead of silently writing outside the caller's transaction.
 *
 * - A query hook receives the private `__internalParams`; its `transaction` is undefined for a
 *   standalone call, `{ kind: 'itx', id }` inside an interactive transaction (also nested ones)
 *   and `{ kind: 'batch', ... }` inside `$transaction([...])`.
 * - `query(args, params)` accepts those params back, so the write can be sent inside a
 *   transaction the extension opened.
 * - Every PrismaPromise has `requestTransaction(tx)`, which runs it inside that transaction.
 * - The client of an interactive transaction carries its id under
 *   `Symbol.for('prisma.client.transaction.scope_context')`.
 * - The client keeps the driver adapter factory it was built with in `_engineConfig.adapter`;
 *   `@prisma/adapter-pg`'s factory keeps its options (`schema`) in `options`.
 * @module
 * @internal
 */
import { OutboxError } from './errors.js'

export interface InteractiveTransaction {
  kind: 'itx'
  id: string
}

export interface InternalParams {
  transaction?: { kind: 'itx' | 'batch'; id: string | number }
  [key: string]: unknown
}

const TX_SCOPE_CONTEXT = Symbol.for('prisma.client.transaction.scope_context')

/** The caller's interactive transaction, when the hook runs inside one. */
export function transactionOf(hookParams: unknown): InternalParams['transaction'] {
  const internal = (hookParams as { __internalParams?: InternalParams }).__internalParams
  if (!internal || typeof internal !== 'object') {
    throw new OutboxError(
      'OUTBOX_PRISMA_INTERNALS',
      'this Prisma Client version does not pass __internalParams to query extensions; use the @prisma/client version @prisma-outbox/extension supports',
    )
  }
  return internal.transaction
}

export function internalParamsOf(hookParams: unknown): InternalParams {
  return (hookParams as { __internalParams: InternalParams }).__internalParams
}

/** The id of the interactive transaction a transaction client (`tx`) belongs to. */
export function interactiveTransactionOf(txClient: object): InteractiveTransaction {
  const scope = (txClient as Record<symbol, { txId?: unknown } | undefined>)[TX_SCOPE_CONTEXT]
  const id = scope?.txId
  if (typeof id !== 'string') {
    throw new OutboxError(
      'OUTBOX_PRISMA_INTERNALS',
      'cannot find the interactive transaction id on the transaction client; use the @prisma/client version @prisma-outbox/extension supports',
    )
  }
  return { kind: 'itx', id }
}

/** Runs a PrismaPromise (model query or raw query) inside the given interactive transaction. */
export function runIn<T>(promise: PromiseLike<T>, tx: InteractiveTransaction): Promise<T> {
  const request = (promise as { requestTransaction?: (tx: InteractiveTransaction) => PromiseLike<T> })
    .requestTransaction
  if (typeof request !== 'function') {
    throw new OutboxError(
      'OUTBOX_PRISMA_INTERNALS',
      'a Prisma query has no requestTransaction(); use the @prisma/client version @prisma-outbox/extension supports',
    )
  }
  return Promise.resolve(request.call(promise, tx))
}

/**
 * Checks, when the extension is applied, that the client is one whose internals are known, so a
 * Prisma upgrade fails at `$extends` naming the version found, not later at a write.
 * @throws OutboxError `OUTBOX_PRISMA_INTERNALS`
 */
export function checkPrismaInternals(client: object): void {
  const version = (client as { _clientVersion?: unknown })._clientVersion
  const ok = typeof version === 'string' && SUPPORTED_CLIENT.test(version)
  if (!ok) {
    throw new OutboxError(
      'OUTBOX_PRISMA_INTERNALS',
      `@prisma-outbox/extension supports @prisma/client >=7.10.0 <8; this client is ${typeof version === 'string' ? version : 'of an unknown version'}`,
    )
  }
}

/** The peer dependency range, `>=7.10.0 <8`. */
const SUPPORTED_CLIENT = /^7\.(?:1\d|[2-9]\d|\d{3,})\.\d+/

/** The schema a `@prisma/adapter-pg` driver adapter was given (`new PrismaPg(url, { schema })`). */
export function adapterSchemaOf(client: object): string | undefined {
  const adapter = (client as { _engineConfig?: { adapter?: { options?: { schema?: unknown } } } })
    ._engineConfig?.adapter
  const schema = adapter?.options?.schema
  return typeof schema === 'string' && schema.length > 0 ? schema : undefined
}

/** Whether a value is a PrismaPromise (what a batch `$transaction([...])` accepts). */
export function isPrismaPromise(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { requestTransaction?: unknown }).requestTransaction === 'function'
  )
}
