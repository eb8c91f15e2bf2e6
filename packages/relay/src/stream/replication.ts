/**
 * One logical replication connection: `START_REPLICATION` on a slot with `pgoutput`, frames in,
 * standby status updates out, and flow control on the socket.
 * @module
 */
import pg from 'pg'
import { decodeFrame, type Lsn, standbyStatus, type WalFrame } from './pgoutput.js'

/** The parts of pg's (untyped) connection object a replication session uses. */
interface WireConnection {
  on(event: 'copyData', listener: (message: { chunk: Buffer }) => void): unknown
  once(event: 'replicationStart', listener: () => void): unknown
  sendCopyFromChunk(chunk: Buffer): void
  stream: { pause(): void; resume(): void }
}

export interface ReplicationSession {
  /** Resolves when the connection ends (cleanly or not); rejects never. */
  ended: Promise<Error | undefined>
  /** True once the connection ended (synchronously, unlike {@link ended}). */
  readonly closed: boolean
  /** The server process (walsender) of this connection: `pg_replication_slots.active_pid` while it streams. */
  readonly pid: number
  /** Tells the server everything up to `lsn` is done: the slot may move there. */
  sendStatus(lsn: Lsn, replyRequested?: boolean): void
  /** Stops reading from the socket (the server then waits: TCP flow control). */
  pause(): void
  resume(): void
  close(): Promise<void>
}

/** True for the error PostgreSQL answers when another connection streams from the slot. */
export function isSlotInUse(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '55006'
}

/**
 * Opens a replication connection and starts streaming the slot from its confirmed position.
 * Resolves once the server accepted (`CopyBothResponse`); rejects with PostgreSQL's error
 * otherwise, e.g. code 55006 when another streamer holds the slot (see {@link isSlotInUse}).
 *
 * @param options.onFrame - called for every frame in order, synchronously
 */
export async function startReplication(options: {
  connectionString: string
  slot: string
  publication: string
  /** `pg_stat_activity.application_name` of the walsender (default: the URL's, else none). */
  applicationName?: string | undefined
  onFrame: (frame: WalFrame) => void
}): Promise<ReplicationSession> {
  // `replication` is a connection parameter pg passes through; its ClientConfig type lacks it.
  const config = {
    connectionString: options.connectionString,
    replication: 'database',
    ...(options.applicationName ? { application_name: options.applicationName.slice(0, 63) } : {}),
  } as pg.ClientConfig
  const client = new pg.Client(config)
  let settle!: (error: Error | undefined) => void
  const ended = new Promise<Error | undefined>((resolve) => {
    settle = resolve
  })
  let done = false
  const finish = (error: Error | undefined) => {
    if (done) return
    done = true
    settle(error)
  }
  client.on('error', (error) => finish(error))
  client.on('end', () => finish(new Error('the replication connection closed')))
  await client.connect()
  const connection = (client as unknown as { connection: WireConnection }).connection
  connection.on('copyData', ({ chunk }) => {
    if (done) return
    try {
      options.onFrame(decodeFrame(chunk))
    } catch (error) {
      finish(error as Error)
      client.end().catch(() => {})
    }
  })
  const started = new Promise<void>((resolve, reject) => {
    connection.once('replicationStart', () => resolve())
    client
      .query(
        `START_REPLICATION SLOT "${options.slot}" LOGICAL 0/0 (proto_version '1', publication_names '"${options.publication}"')`,
      )
      .then(
        () => finish(new Error('the server ended replication')),
        (error: Error) => {
          reject(error)
          finish(error)
        },
      )
  })
  try {
    await started
  } catch (error) {
    await client.end().catch(() => {})
    throw error
  }
  const pid = (client as unknown as { processID: number }).processID
  return {
    ended,
    get closed() {
      return done
    },
    pid,
    sendStatus(lsn, replyRequested = false) {
      if (!done) connection.sendCopyFromChunk(standbyStatus(lsn, Date.now(), replyRequested))
    },
    pause: () => connection.stream.pause(),
    resume: () => connection.stream.resume(),
    async close() {
      finish(undefined)
      await client.end().catch(() => {})
    },
  }
}
