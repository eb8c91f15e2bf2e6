/**
 * The relay's own PostgreSQL connections (Node, on `pg`): every connect and every query is bounded
 * in time on both ends, and no client can ever emit an unhandled `'error'`.
 * @module
 */
import pg from 'pg'

/**
 * Time bounds of the relay's database sessions, in milliseconds.
 *
 * - `connectMs`: TCP connect + startup + authentication, and the wait for a free pooled client.
 *   A database that accepts connections and never answers fails here.
 * - `statementMs`: the server cancels any relay statement running longer (`statement_timeout`).
 * - `queryMs`: the client gives up on a query that got no answer (a silent or frozen server,
 *   where the server-side timeout cannot fire); the connection is then discarded.
 * - `lockMs`: the longest any relay statement waits for a lock (`lock_timeout`). Claims set their
 *   own, shorter wait (see the engine).
 * - `idleInTransactionMs`: the server ends a relay session that sits idle inside a transaction
 *   (`idle_in_transaction_session_timeout`): a frozen or partitioned relay holding the claim lock
 *   and its claim's row locks loses them after this long.
 * - `keepAliveMs`: TCP keepalive idle time on both ends; a peer that vanished without closing the
 *   connection is detected within about this plus 3 probes 5 s apart.
 */
export interface DatabaseTimeouts {
  connectMs: number
  statementMs: number
  queryMs: number
  lockMs: number
  idleInTransactionMs: number
  keepAliveMs: number
}

/** The defaults of {@link DatabaseTimeouts}. */
export const DEFAULT_DATABASE_TIMEOUTS: Readonly<DatabaseTimeouts> = Object.freeze({
  connectMs: 5_000,
  statementMs: 15_000,
  queryMs: 20_000,
  lockMs: 10_000,
  idleInTransactionMs: 5_000,
  keepAliveMs: 10_000,
})

/** Options of {@link relayConnectionConfig} and {@link createRelayPool}. */
export interface RelayConnectionOptions {
  /** Shown in `pg_stat_activity.application_name` (truncated to 63 bytes). */
  applicationName?: string | undefined
  timeouts?: Partial<DatabaseTimeouts> | undefined
}

function checkTimeouts(input: Partial<DatabaseTimeouts> | undefined): DatabaseTimeouts {
  const timeouts = { ...DEFAULT_DATABASE_TIMEOUTS, ...input }
  for (const [name, value] of Object.entries(timeouts)) {
    if (!Number.isInteger(value) || value < 1 || value > 86_400_000)
      throw new RangeError(`database timeout ${name} must be an integer between 1 and 86400000 (ms)`)
  }
  return timeouts
}

/**
 * The `pg` client configuration of a relay session: the connection string plus every bound of
 * {@link DatabaseTimeouts} (server-side ones as startup parameters, so they hold from the first
 * statement, also for a `pg.Client` that never goes through a pool, like watch's LISTEN
 * connection).
 *
 * @param connectionString - e.g. `postgresql://user:password@host:5432/app`
 * @param [options.timeouts] - overrides of {@link DEFAULT_DATABASE_TIMEOUTS}
 * @example
 * const listener = new pg.Client(relayConnectionConfig(process.env.DATABASE_URL, { applicationName: 'outbox-relay' }))
 */
export function relayConnectionConfig(
  connectionString: string,
  options: RelayConnectionOptions = {},
): pg.ClientConfig {
  const t = checkTimeouts(options.timeouts)
  const seconds = Math.max(1, Math.round(t.keepAliveMs / 1000))
  return {
    connectionString,
    application_name: (options.applicationName ?? 'outbox-relay').slice(0, 63),
    connectionTimeoutMillis: t.connectMs,
    query_timeout: t.queryMs,
    statement_timeout: t.statementMs,
    lock_timeout: t.lockMs,
    idle_in_transaction_session_timeout: t.idleInTransactionMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: t.keepAliveMs,
    // The server side of the same keepalive: a relay host that vanished is dropped in ~25 s.
    options: `-c tcp_keepalives_idle=${seconds} -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3`,
  }
}

/**
 * A `pg.Pool` for the relay: {@link relayConnectionConfig} on every connection, and an `'error'`
 * listener on the pool AND on every client for its whole life. (pg-pool removes its own listener
 * while a client is checked out, and `pool.query` listens only `once`: a connection cut by the
 * server — restart, `pg_terminate_backend`, a timeout — can emit a second error, which without a
 * listener would kill the process.)
 *
 * @param connectionString - the database URL
 * @param [options.max=10] - pool size
 * @param [options.onError] - told about connections lost (the pool replaces them)
 * @example
 * const pool = createRelayPool(process.env.DATABASE_URL, { onError: (e) => console.warn(e.message) })
 * const engine = createEngine({ pool, publisher })
 */
export function createRelayPool(
  connectionString: string,
  options: RelayConnectionOptions & { max?: number; onError?: (error: Error) => void } = {},
): pg.Pool {
  const pool = new pg.Pool({ ...relayConnectionConfig(connectionString, options), max: options.max ?? 10 })
  const onError = (error: Error) => {
    try {
      options.onError?.(error)
    } catch {
      // an observer must not turn a handled error into an unhandled one
    }
  }
  // An idle client's error reaches both listeners; report it once (from the client's).
  pool.on('error', () => {})
  pool.on('connect', (client) => {
    client.on('error', onError)
  })
  return pool
}
