/**
 * The narrow database surface the relay needs. `pg.Pool` satisfies it; so does anything with
 * the same two methods (a test double, another driver behind an adapter).
 * @module
 */
import { isRelayError, RelayError } from './errors.js'

/** What a query returns: its rows and how many rows a write touched. */
export interface QueryResultLike {
  // biome-ignore lint/suspicious/noExplicitAny: rows are typed by the statement that reads them
  rows: any[]
  rowCount: number | null
}

/** Anything that runs a parameterised statement. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<QueryResultLike>
}

/** A checked-out connection: used for the claim transaction. */
export interface PoolClientLike extends Queryable {
  release(error?: Error | boolean): void
  /** node-postgres clients emit `'error'` when the server drops the connection. */
  on?(event: 'error', listener: (error: Error) => void): unknown
  off?(event: 'error', listener: (error: Error) => void): unknown
}

/** A connection pool, e.g. `new pg.Pool({ connectionString })`. */
export interface PoolLike extends Queryable {
  connect(): Promise<PoolClientLike>
}

/** A statement as a pure value: text with `$n` placeholders and its values. */
export interface SqlStatement<Row = QueryResultLike['rows'][number]> {
  text: string
  values: unknown[]
  /**
   * A name for drivers that prepare named statements (node-postgres): the server then plans the
   * statement once per connection. Derived from the text (see {@link statementName}), so one name
   * never stands for two texts.
   */
  name?: string
  /** The type of the rows it returns, for {@link run}; never set at run time. */
  readonly row?: Row
}

/** What {@link run} resolves to: the rows typed by the statement. */
export interface QueryResult<Row> {
  rows: Row[]
  rowCount: number | null
}

/**
 * Runs `fn` inside `BEGIN … COMMIT` on one pooled connection, rolling back on error. The
 * connection is discarded rather than reused when it broke, or when `discardOn` says the error
 * left it unfit (e.g. a prepared statement the server no longer accepts).
 * @internal
 */
export async function withTransaction<T>(
  pool: PoolLike,
  fn: (client: Queryable) => Promise<T>,
  discardOn?: (error: unknown) => boolean,
): Promise<T> {
  const client = await pool.connect()
  const guard = guardClient(client)
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (error) {
    try {
      await client.query('ROLLBACK')
    } catch (rollbackError) {
      // The connection is unusable: tell the pool to discard it.
      guard.broken ??= asError(rollbackError)
    }
    if (discardOn?.(error)) guard.broken ??= asError(error)
    throw error
  } finally {
    guard.release()
  }
}

const asError = (error: unknown) => (error instanceof Error ? error : new Error(String(error)))

/**
 * Watches a checked-out client until `release()`, which gives it back to the pool, or discards
 * it when `broken` is set. pg-pool stops listening for 'error' on a checked-out client; a
 * connection the server cuts meanwhile (restart, pg_terminate_backend) would emit an unhandled
 * 'error' and kill the process. The guard keeps it: the pending query rejects on its own, and
 * the client is discarded.
 */
function guardClient(client: PoolClientLike): { broken: Error | undefined; release(): void } {
  const guard = {
    broken: undefined as Error | undefined,
    release() {
      client.off?.('error', onError)
      client.release(guard.broken)
    },
  }
  const onError = (error: Error) => {
    guard.broken = error
  }
  client.on?.('error', onError)
  return guard
}

/** A driver that also takes node-postgres's query config, e.g. to prepare a named statement. */
export interface PreparingQueryable {
  query(config: { name: string; text: string; values: unknown[] }): Promise<QueryResultLike>
}

/**
 * Whether `pool` is a node-postgres pool (`pg.Pool`, or a pool built on it), whose clients
 * prepare named statements: pg-pool keeps the client class it makes connections with.
 * @internal
 */
export function isNodePostgresPool(pool: unknown): boolean {
  return typeof (pool as { Client?: unknown } | null)?.Client === 'function'
}

/**
 * Runs a {@link SqlStatement}; with `prepare`, one that has a `name` as a named prepared statement.
 * @internal
 */
export function run<Row>(
  db: Queryable,
  statement: SqlStatement<Row>,
  prepare = false,
): Promise<QueryResult<Row>> {
  if (prepare && statement.name !== undefined) {
    const { name, text, values } = statement
    return (db as Queryable & PreparingQueryable).query({ name, text, values })
  }
  return db.query(statement.text, statement.values)
}

/**
 * Runs a statement on `pool`; with `prepare`, one that has a `name` runs as a named prepared
 * statement on a checked-out connection. A connection whose statement failed is discarded (as
 * `pg.Pool.query` does), and a prepared statement the server refuses (see
 * {@link isStalePreparedStatement}) runs again unprepared.
 * @internal
 */
export async function runPooled<Row>(
  pool: PoolLike,
  statement: SqlStatement<Row>,
  prepare: boolean,
): Promise<QueryResult<Row>> {
  if (!prepare || statement.name === undefined) return run(pool, statement)
  const client = await pool.connect()
  const guard = guardClient(client)
  try {
    return await run(client, statement, true)
  } catch (error) {
    guard.broken = asError(error)
    if (!isStalePreparedStatement(error)) throw error
  } finally {
    guard.release()
  }
  return run(pool, statement)
}

/**
 * A statement name derived from its text: `prefix` and 64 bits of two FNV-1a hashes (web APIs
 * only, no crypto needed: a collision would need two texts of one relay's few statements to meet).
 * @internal
 * @example
 * statementName('outbox_claim', 'SELECT 1') // 'outbox_claim_…' (16 hex digits)
 */
export function statementName(prefix: string, text: string): string {
  let a = 0x811c9dc5
  let b = 0x01000193 ^ 0x5bd1e995
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 13)
  }
  const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0')
  return `${prefix}_${hex(a)}${hex(b)}`
}

/**
 * Whether `error` says a named prepared statement cannot be used on this connection any more:
 * its result type changed (a migration altered a returned column: "cached plan must not change
 * result type", 0A000), or a pooler handed over a server connection that lacks it (26000) or
 * already has it (42P05). The statement then runs unprepared on a fresh connection.
 * @internal
 */
export function isStalePreparedStatement(error: unknown): boolean {
  const state = sqlState(error)
  return state === '0A000' || state === '26000' || state === '42P05'
}

/** SQLSTATE of a statement that waited longer than `lock_timeout`. */
export const LOCK_NOT_AVAILABLE = '55P03'

/** SQLSTATE of a statement cancelled (e.g. by `statement_timeout`). */
export const QUERY_CANCELED = '57014'

/** The SQLSTATE of a `pg` error (`error.code`), if any. @internal */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

/**
 * Why a database call failed, in words safe to show a caller (no server text, no credentials):
 * a timeout of which kind, a refused or dropped connection, or the SQLSTATE.
 *
 * @example
 * databaseFailureReason(new Error('Query read timeout')) // 'no answer within the query timeout'
 */
export function databaseFailureReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  const state = sqlState(error)
  const errno = (error as { code?: unknown } | null)?.code
  const within = /no answer within (\d+) ms/.exec(message)
  if (within) return `no answer within ${within[1]} ms`
  if (/timeout expired|connection timeout/i.test(message)) return 'no answer within the connect timeout'
  if (/query read timeout/i.test(message)) return 'no answer within the query timeout'
  if (state === QUERY_CANCELED) return 'cancelled by the statement timeout'
  if (state === LOCK_NOT_AVAILABLE) return 'a lock wait exceeded the lock timeout'
  if (state === '25P03') return 'the session was idle in a transaction for too long'
  if (state === '57P01' || state === '57P02' || state === '57P03')
    return 'the server is shutting down or starting'
  if (state === '53300') return 'too many connections'
  if (state?.startsWith('28')) return 'authentication failed'
  if (state === '3D000') return 'the database does not exist'
  if (state === '42P01') return 'the outbox table does not exist'
  if (errno === 'ECONNREFUSED') return 'connection refused'
  if (errno === 'ENOTFOUND' || errno === 'EAI_AGAIN') return 'the host name does not resolve'
  if (errno === 'ECONNRESET' || /terminated|closed|ended/i.test(message)) return 'the connection was closed'
  return state ? `SQLSTATE ${state}` : 'unexpected error'
}

/** A `RELAY_DATABASE` error whose message names the operation and why it failed. @internal */
export function databaseError(what: string, error: unknown): RelayError {
  const detail = (error as Error)?.message ?? String(error)
  return new RelayError('RELAY_DATABASE', `${what} failed (${databaseFailureReason(error)}): ${detail}`, {
    cause: error,
  })
}

/** What {@link withTimeout} rejects with. @internal */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError'
}

/** Rejects with a {@link TimeoutError} when `promise` has not settled within `ms`. @internal */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms)
  })
  promise.catch(() => {})
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Runs a database call, bounded by `timeoutMs` when given, and turns its failure into a
 * `RELAY_DATABASE` error naming `what` (one that already is passes through unchanged).
 * @internal
 */
export async function databaseCall<T>(what: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T> {
  try {
    return await (timeoutMs === undefined ? fn() : withTimeout(fn(), timeoutMs))
  } catch (error) {
    throw isRelayError(error, 'RELAY_DATABASE') ? error : databaseError(what, error)
  }
}
