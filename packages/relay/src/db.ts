/**
 * The narrow database surface the relay needs. `pg.Pool` satisfies it; so does anything with
 * the same two methods (a test double, another driver behind an adapter).
 * @module
 */

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
