/**
 * The narrow database surface the relay needs. `pg.Pool` satisfies it; so does anything with
 * the same two methods (a test double, another driver behind an adapter).
 * @module
 */
import { RelayError } from './errors.js'

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
export interface SqlStatement {
  text: string
  values: unknown[]
}

/**
 * Runs `fn` inside `BEGIN … COMMIT` on one pooled connection, rolling back on error.
 * @internal
 */
export async function withTransaction<T>(pool: PoolLike, fn: (client: Queryable) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  // pg-pool stops listening for 'error' on a checked-out client; a connection the server cuts
  // meanwhile (restart, pg_terminate_backend) would emit an unhandled 'error' and kill the
  // process. Keep it: the pending query rejects on its own, and the client is discarded.
  const onError = (error: Error) => {
    broken = error
  }
  client.on?.('error', onError)
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
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError))
    }
    throw error
  } finally {
    client.off?.('error', onError)
    client.release(broken)
  }
}

/** Runs a {@link SqlStatement}. @internal */
export function run(db: Queryable, statement: SqlStatement): Promise<QueryResultLike> {
  return db.query(statement.text, statement.values)
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
