/**
 * The write path. Capture itself happens in the database (see capture-sql.ts); here the
 * extension makes sure the capture triggers are in place before a client's first write, and
 * passes per-write headers to them through a transaction-local setting.
 * @module
 * @internal
 */
import {
  type CaptureSqlOptions,
  captureStatements,
  HEADERS_SETTING,
  type ModelCapture,
  qualified,
  TRIGGER_NAMES,
  uuidv7FunctionSql,
} from './capture-sql.js'
import type { OutboxDatamodel } from './datamodel.js'
import { OutboxError } from './errors.js'
import {
  type InteractiveTransaction,
  interactiveTransactionOf,
  internalParamsOf,
  runIn,
  transactionOf,
} from './internals.js'
import { WRITE_OPERATIONS } from './operations.js'
import { type ResolvedOptions, readHeaders } from './options.js'

type AnyRecord = Record<string, unknown>
// biome-ignore lint/suspicious/noExplicitAny: the base client's shape depends on the user's schema
export type BaseClient = any

export interface HookParams {
  model?: string
  operation: string
  args: AnyRecord
  query: (args: unknown, internalParams?: unknown) => PromiseLike<unknown>
}

/**
 * Options for a transaction the extension opens itself (only for a standalone write with
 * headers): no timeout beyond what a plain statement has. setTimeout's largest delay.
 */
export const NO_TIMEOUT = { timeout: 2_147_483_647, maxWait: 2_147_483_647 }

/** Key of the advisory lock serialising trigger installation (any number of clients at once). */
const INSTALL_LOCK = 7_270_736_901
/** How long installing waits for a table lock held by another transaction. */
const INSTALL_LOCK_TIMEOUT_MS = 5_000

export class Capture {
  private ready: Promise<void> | undefined
  private installed = false
  private readonly sqlOptions: CaptureSqlOptions
  private readonly captures: ModelCapture[]
  /** Models whose writes can change captured rows (themselves, nested writes, referential actions). */
  private readonly reachesCaptured: ReadonlySet<string>

  constructor(
    private readonly client: BaseClient,
    datamodel: OutboxDatamodel,
    private readonly options: ResolvedOptions,
    schema: string | undefined,
  ) {
    this.sqlOptions = { captured: options.captured, outboxTable: options.outboxTable, schema }
    this.captures = captureStatements(datamodel, this.sqlOptions)
    this.reachesCaptured = modelsReaching(datamodel, new Set(options.captured.keys()))
  }

  /** The outbox table, qualified when a schema is known. */
  get outboxTable(): string {
    const { schema, outboxTable } = this.sqlOptions
    return qualified(schema, outboxTable)
  }

  /** The `$allModels.$allOperations` query hook. */
  async onQuery(params: HookParams): Promise<unknown> {
    const { model, operation, args } = params
    if (!model || !WRITE_OPERATIONS.has(operation)) return params.query(args)
    if (!this.installed) {
      // Inside a caller's transaction the catalog check runs on its connection, so a pool of
      // one connection cannot wait for itself.
      const transaction = transactionOf(params)
      await this.ensureCapture(
        transaction?.kind === 'itx' ? { kind: 'itx', id: String(transaction.id) } : undefined,
      )
    }
    if (!this.options.headers) return params.query(args)
    const transaction = transactionOf(params)
    // Inside a transaction every write sets its headers: one the schema does not relate to a
    // captured model can still change captured rows (a foreign key or trigger only in SQL), and
    // those rows must not get the headers an earlier write of the transaction set.
    if (transaction?.kind !== 'itx' && !this.reachesCaptured.has(model)) return params.query(args)
    const headers = readHeaders(this.options.headers)
    if (transaction?.kind === 'itx') {
      const tx = { kind: 'itx' as const, id: String(transaction.id) }
      await runIn(this.setHeaders(headers), tx)
      return params.query(args)
    }
    if (transaction?.kind === 'batch') {
      throw new OutboxError(
        'OUTBOX_PRISMA_INTERNALS',
        `${model}.${operation} ran in a batch $transaction the outbox extension did not see, so its headers cannot reach the events; call $transaction on the client outbox() returned`,
      )
    }
    if (Object.keys(headers).length === 0) return params.query(args)
    // The setting is transaction-local: the write needs a transaction to share it with.
    return this.client.$transaction(async (txClient: BaseClient) => {
      const tx = interactiveTransactionOf(txClient)
      await runIn(this.setHeaders(headers), tx)
      return params.query(args, { ...internalParamsOf(params), transaction: tx })
    }, NO_TIMEOUT)
  }

  /** Sets the headers the capture triggers put on the events of the current transaction. */
  setHeaders(headers: Record<string, string>): PromiseLike<unknown> {
    return this.client.$executeRawUnsafe(
      `SELECT set_config('${HEADERS_SETTING}', $1, true)`,
      JSON.stringify(headers),
    )
  }

  /**
   * Once per client, before its first write: checks with one catalog query that every captured
   * model's triggers exist and match the options; installs or replaces them when not (default),
   * or fails naming the model and the SQL to apply (`triggers: 'verify'`).
   */
  ensureCapture(tx?: InteractiveTransaction): Promise<void> {
    if (tx !== undefined) return this.checkInTransaction(tx)
    this.ready ??= this.checkNow()
    return this.ready
  }

  /** Checks (and installs) now, even when an earlier check passed. */
  checkNow(): Promise<void> {
    const checking = this.check().then(
      () => {
        this.installed = true
      },
      (error: unknown) => {
        this.ready = undefined
        throw error
      },
    )
    this.ready = checking
    return checking
  }

  private async check(): Promise<void> {
    const stale = await this.staleModels(undefined)
    if (stale.length === 0) return
    this.refuseToInstall(stale)
    try {
      await this.client.$transaction(async (tx: BaseClient) => {
        await this.install(interactiveTransactionOf(tx))
      }, NO_TIMEOUT)
    } catch (error) {
      throw this.installFailed(stale, error)
    }
  }

  /**
   * The check of a first write inside the caller's interactive transaction. It runs on that
   * transaction's connection, and so does an install (under a savepoint): a pool of one
   * connection cannot wait for itself, nor the DDL for locks the caller's transaction holds.
   * The installed triggers commit or roll back with the caller's transaction, so only a check
   * that finds them current is remembered.
   */
  private async checkInTransaction(tx: InteractiveTransaction): Promise<void> {
    const stale = await this.staleModels(tx)
    if (stale.length === 0) {
      this.installed = true
      return
    }
    this.refuseToInstall(stale)
    const run = (sql: string) => runIn(this.client.$executeRawUnsafe(sql), tx)
    const [{ timeout }] = (await runIn(
      this.client.$queryRawUnsafe(`SELECT current_setting('lock_timeout') AS timeout`),
      tx,
    )) as [{ timeout: string }]
    await run('SAVEPOINT prisma_outbox_install')
    try {
      await this.install(tx)
      // Releasing the savepoint keeps its settings: give the caller back its lock_timeout.
      await runIn(this.client.$executeRawUnsafe(`SELECT set_config('lock_timeout', $1, true)`, timeout), tx)
      await run('RELEASE SAVEPOINT prisma_outbox_install')
    } catch (error) {
      // Rolling back to the savepoint also restores lock_timeout; the caller's transaction goes on.
      await run('ROLLBACK TO SAVEPOINT prisma_outbox_install')
      throw this.installFailed(stale, error)
    }
  }

  /** With `triggers: 'verify'`, stale triggers fail naming the models and the SQL to apply. */
  private refuseToInstall(stale: ModelCapture[]): void {
    if (this.options.triggers !== 'verify') return
    const sql = [uuidv7FunctionSql(this.sqlOptions.schema), ...stale.flatMap((c) => c.statements)]
      .map((s) => `${s};`)
      .join('\n')
    throw new OutboxError(
      'OUTBOX_NOT_INSTALLED',
      `the capture triggers of ${stale.map((c) => `${c.model} (${c.table})`).join(', ')} are missing or out of date, and triggers: 'verify' does not install them; apply this SQL (also written by prisma-outbox-generator as capture.sql):\n${sql}`,
    )
  }

  /** Installs what is still stale once the install lock is held, in the given transaction. */
  private async install(tx: InteractiveTransaction): Promise<void> {
    const run = (sql: string) => runIn(this.client.$executeRawUnsafe(sql), tx)
    await run(`SELECT pg_advisory_xact_lock(${INSTALL_LOCK})`)
    // Another client may have installed them while this one waited for the lock: check again
    // (a new snapshot under Read Committed), so concurrent first writes run the DDL, and take
    // its table locks, once.
    const still = await this.staleModels(tx)
    if (still.length === 0) return
    // A DDL lock request queues every later write of the table behind it: give up rather than
    // stall the table behind a long transaction.
    await run(`SELECT set_config('lock_timeout', '${INSTALL_LOCK_TIMEOUT_MS}ms', true)`)
    await run(uuidv7FunctionSql(this.sqlOptions.schema))
    for (const capture of still) {
      for (const statement of capture.statements) await run(statement)
    }
  }

  private installFailed(stale: ModelCapture[], error: unknown): OutboxError {
    return new OutboxError(
      'OUTBOX_NOT_INSTALLED',
      `installing the capture triggers of ${stale.map((c) => c.model).join(', ')} failed (${(error as Error).message.trim().split('\n').at(-1)}): retry, or apply the generated capture.sql as the tables' owner and set triggers: 'verify'`,
      { cause: error },
    )
  }

  /** Captured models whose triggers are missing, disabled or made for other options. */
  private async staleModels(tx: InteractiveTransaction | undefined): Promise<ModelCapture[]> {
    const query = this.client.$queryRawUnsafe(
      `SELECT m.model, to_regclass(m.tbl) IS NOT NULL AS table_exists, to_regclass($4) IS NOT NULL AS outbox_exists,
         (SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass(m.tbl)) AS kind,
         (SELECT count(*)::int FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
           WHERE t.tgrelid = to_regclass(m.tbl) AND t.tgname = ANY($5::text[]) AND t.tgenabled <> 'D'
             AND obj_description(p.oid, 'pg_proc') = m.fp) AS current
       FROM unnest($1::text[], $2::text[], $3::text[]) AS m(model, tbl, fp)`,
      this.captures.map((c) => c.model),
      this.captures.map((c) => c.table),
      this.captures.map((c) => c.fingerprint),
      this.outboxTable,
      [...TRIGGER_NAMES],
    )
    const rows = (await (tx ? runIn(query, tx) : query)) as {
      model: string
      table_exists: boolean
      outbox_exists: boolean
      kind: string | null
      current: number
    }[]
    if (rows.length > 0 && !rows[0]?.outbox_exists) {
      throw new OutboxError(
        'OUTBOX_NOT_INSTALLED',
        `the outbox table ${this.outboxTable} does not exist${this.sqlOptions.schema ? ` in schema "${this.sqlOptions.schema}" (the client's schema)` : ''}: apply the outbox migration there (@prisma-outbox/extension/prisma/migrations)`,
      )
    }
    const missing = rows.filter((r) => !r.table_exists)
    if (missing.length > 0) {
      throw new OutboxError(
        'OUTBOX_NOT_INSTALLED',
        `the table of captured model(s) ${missing.map((r) => `${r.model} (${this.captures.find((c) => c.model === r.model)?.table})`).join(', ')} does not exist: apply your migrations first`,
      )
    }
    // Transition tables, which the triggers read, exist only on tables (plain or partitioned).
    const notTables = rows.filter((r) => r.table_exists && r.kind !== 'r' && r.kind !== 'p')
    if (notTables.length > 0) {
      throw new OutboxError(
        'OUTBOX_INVALID_OPTIONS',
        `only tables can be captured: ${notTables.map((r) => `${r.model} (${this.captures.find((c) => c.model === r.model)?.table}) is a ${RELATION_KINDS[r.kind ?? ''] ?? `relation of kind "${r.kind}"`}`).join(', ')}; capture the tables it reads or writes instead`,
      )
    }
    const stale = new Set(rows.filter((r) => r.current !== TRIGGER_NAMES.length).map((r) => r.model))
    return this.captures.filter((c) => stale.has(c.model))
  }
}

const RELATION_KINDS: Record<string, string> = { v: 'view', m: 'materialized view', f: 'foreign table' }

/** Models from which a write can reach a captured model's rows through relations, both ways. */
function modelsReaching(datamodel: OutboxDatamodel, captured: ReadonlySet<string>): ReadonlySet<string> {
  const reach = new Set(captured)
  let grew = true
  while (grew) {
    grew = false
    for (const [name, info] of Object.entries(datamodel.models)) {
      if (reach.has(name)) continue
      if (Object.values(info.relations).some((r) => reach.has(r.model))) {
        reach.add(name)
        grew = true
      }
    }
  }
  return reach
}
