/**
 * Watch mode: drain as soon as a row is committed, woken by PostgreSQL `NOTIFY` (the outbox
 * table's trigger sends one per writing statement on channel `outbox_event`), with a polling
 * fallback for what notifications cannot cover (rows whose retry backoff ends, a lost
 * connection) and automatic reconnection.
 * @module
 */
import { sqlState } from './db.js'
import type { DrainResult, Engine } from './engine.js'
import { coerceError } from './errors.js'
import { type Logger, log } from './log.js'
import type { DrainOptions } from './options.js'

/**
 * The dedicated connection that LISTENs: a `pg.Client` fits. It must NOT come from the pool —
 * LISTEN belongs to a session, and a pooled connection would be handed to other queries.
 */
export interface ListenClient {
  connect(): Promise<unknown>
  query(text: string): Promise<unknown>
  // biome-ignore lint/suspicious/noExplicitAny: pg.Client's overloaded `on`
  on(event: any, listener: (...args: any[]) => void): unknown
  end(): Promise<unknown>
}

/**
 * Options of {@link createWatcher}.
 *
 * @param engine - what to drain with
 * @param createClient - returns a NEW, unconnected client, e.g. `() => new pg.Client({ connectionString })`
 * @param [channel='outbox_event'] - the NOTIFY channel of the outbox trigger
 * @param [pollMs=5000] - polling fallback: a drain at least this often, notifications or not
 * @param [debounceMs=20] - notifications within this window share one drain
 * @param [reconnectMinMs=250] - first reconnect delay; doubles up to `reconnectMaxMs`
 * @param [reconnectMaxMs=30000] - cap of the reconnect delay
 * @param [recheckMinMs=50] - first delay of a re-drain when due rows were not claimable yet; doubles up to `pollMs`
 * @param [drain] - options of each drain (`maxEvents`, `budgetMs`, `topics`)
 * @param [logger] - a pino-compatible logger: LISTEN and drains that did something at info,
 *   failures at error (a lost LISTEN connection at warn); in addition to the callbacks
 */
export interface WatcherOptions {
  engine: Pick<Engine, 'drain'>
  createClient: () => ListenClient
  channel?: string | undefined
  pollMs?: number | undefined
  debounceMs?: number | undefined
  reconnectMinMs?: number | undefined
  reconnectMaxMs?: number | undefined
  recheckMinMs?: number | undefined
  drain?: Omit<DrainOptions, 'signal'> | undefined
  /** After each drain that did something (published, retried or dead > 0). */
  onDrain?: ((result: DrainResult, reason: WakeReason) => void) | undefined
  /** A drain failed or the connection was lost; the watcher carries on. */
  onError?: ((error: unknown, where: 'drain' | 'listen') => void) | undefined
  /** LISTEN is active (after start and after each reconnect). */
  onListening?: (() => void) | undefined
  logger?: Logger | undefined
}

/** Why a drain ran. */
export type WakeReason = 'start' | 'notify' | 'poll' | 'reconnect' | 'more' | 'recheck'

/** What {@link createWatcher} returns. */
export interface Watcher {
  /**
   * Connects, LISTENs and drains once. Rejects only if the FIRST connection cannot be made (a
   * first connection that the server cuts is tried again, up to 5 times).
   */
  start(): Promise<void>
  /** Stops: no new drain, the running one stops after its batch, the connection closes. */
  stop(): Promise<void>
  /** True while LISTEN is active on a live connection. */
  readonly listening: boolean
  /** Resolves when no drain is running or scheduled (tests). */
  idle(): Promise<void>
}

/**
 * A first connection that was cut (server shutdown, `pg_terminate_backend`, reset) is worth
 * another try; one that cannot be made at all (refused, timed out, bad credentials) is not.
 */
function wasCut(error: unknown): boolean {
  const state = sqlState(error)
  if (state?.startsWith('57P')) return true
  const message = error instanceof Error ? error.message : String(error)
  return /Connection terminated unexpectedly|ECONNRESET|terminating connection/i.test(message)
}

/** Tries of the first connection when it is cut (see {@link wasCut}). */
const START_TRIES = 5

function validate(name: string, value: number, min: number): number {
  if (!Number.isFinite(value) || value < min)
    throw new Error(`invalid watcher options: ${name} must be a number >= ${min}`)
  return value
}

/**
 * Creates a watcher. Drains never overlap: a wake-up during a drain schedules one more drain
 * right after it (the new row may have committed after the running drain's last claim). A
 * drain that published and stopped with rows still due (budget or `maxEvents` reached) is
 * followed at once by another. A drain that failed, or made no progress, waits for the next
 * notification or poll — so a broker outage is retried at the poll rate, not in a hot loop.
 *
 * One case in between: a drain that found rows due but could claim none of them, without any
 * failure. The usual reason is a transaction still open elsewhere on the cluster: the claim never
 * overtakes open transactions (see `claim-batch.ts`), so a notified row may have to wait for an
 * unrelated transaction to end, which sends no notification. Such a drain is retried after
 * `recheckMinMs`, doubling up to `pollMs`, instead of waiting a whole poll interval. Rows that are
 * held back for good (behind a dead row under `'block-key'`) therefore cost a few extra cheap
 * drains that back off to the poll rate.
 *
 * @example
 * const watcher = createWatcher({
 *   engine,
 *   createClient: () => new pg.Client(relayConnectionConfig(process.env.DATABASE_URL)),
 *   pollMs: 5_000,
 * })
 * await watcher.start()
 * process.on('SIGTERM', () => watcher.stop())
 */
export function createWatcher(watcherOptions: WatcherOptions): Watcher {
  const settings = resolveSettings(watcherOptions)
  const options = withLogging(watcherOptions, settings)
  const report = (error: unknown, where: 'drain' | 'listen') => {
    try {
      options.onError?.(error, where)
    } catch {
      // observers must not break the watcher
    }
  }
  const drains = createDrainScheduler(options, settings, report)
  // Rows committed while we were not listening got no notification we could see: drain on each (re)connect.
  const listener = createListener(options, settings, report, {
    notified: () => drains.wake('notify'),
    ready: (reason) => drains.drainNow(reason),
  })
  let started = false
  let pollTimer: ReturnType<typeof setInterval> | undefined

  return {
    get listening() {
      return listener.listening
    },

    async start() {
      if (started) throw new Error('watcher already started')
      started = true
      await listener.connectFirst()
      pollTimer = setInterval(() => {
        drains.drainNow('poll')
        // Detects a silently dead connection (no FIN): a failing ping triggers a reconnect.
        listener.ping()
      }, settings.pollMs)
    },

    async stop() {
      listener.halt()
      clearInterval(pollTimer)
      await drains.stop()
      await listener.close()
    },

    idle: () => drains.idle(),
  }
}

interface WatcherSettings {
  channel: string
  pollMs: number
  debounceMs: number
  reconnectMinMs: number
  reconnectMaxMs: number
  recheckMinMs: number
}

function resolveSettings(options: WatcherOptions): WatcherSettings {
  const pollMs = validate('pollMs', options.pollMs ?? 5_000, 1)
  const reconnectMinMs = validate('reconnectMinMs', options.reconnectMinMs ?? 250, 1)
  return {
    channel: options.channel ?? 'outbox_event',
    pollMs,
    debounceMs: validate('debounceMs', options.debounceMs ?? 20, 0),
    reconnectMinMs,
    reconnectMaxMs: validate('reconnectMaxMs', options.reconnectMaxMs ?? 30_000, reconnectMinMs),
    recheckMinMs: Math.min(pollMs, validate('recheckMinMs', options.recheckMinMs ?? 50, 1)),
  }
}

type Report = (error: unknown, where: 'drain' | 'listen') => void

/**
 * One drain at a time: a wake-up during a drain runs one more after it; notifications are
 * debounced; a drain that found due rows but could claim none is retried after a doubling delay.
 */
function createDrainScheduler(options: WatcherOptions, settings: WatcherSettings, report: Report) {
  const { engine } = options
  const { pollMs, debounceMs, recheckMinMs } = settings
  let stopped = false
  let debounceTimer: ReturnType<typeof setTimeout> | undefined
  let recheckTimer: ReturnType<typeof setTimeout> | undefined
  let recheckDelay = recheckMinMs
  let running: Promise<void> | undefined
  let again: WakeReason | undefined
  const abort = new AbortController()

  async function drainLoop(reason: WakeReason): Promise<void> {
    let next: WakeReason | undefined = reason
    while (next && !stopped) {
      const why: WakeReason = next
      again = undefined
      next = undefined
      try {
        const result = await engine.drain({ ...options.drain, signal: abort.signal })
        if (result.published + result.retried + result.dead > 0) {
          try {
            options.onDrain?.(result, why)
          } catch {
            // ignore
          }
        }
        if (result.published > 0 && result.remaining > 0) next = 'more'
        else if (result.remaining > 0 && result.published + result.retried + result.dead === 0)
          scheduleRecheck()
        if (result.published > 0 || result.remaining === 0) recheckDelay = recheckMinMs
      } catch (error) {
        report(error, 'drain')
      }
      next = again ?? next
    }
  }

  function scheduleRecheck() {
    if (stopped || recheckTimer) return
    const delay = recheckDelay
    recheckDelay = Math.min(pollMs, recheckDelay * 2)
    recheckTimer = setTimeout(() => {
      recheckTimer = undefined
      drainNow('recheck')
    }, delay)
  }

  function drainNow(reason: WakeReason) {
    if (stopped) return
    if (running) {
      again ??= reason
      return
    }
    running = drainLoop(reason).finally(() => {
      running = undefined
    })
  }

  return {
    drainNow,
    wake(reason: WakeReason) {
      if (stopped) return
      if (debounceMs === 0) return drainNow(reason)
      if (debounceTimer) return
      debounceTimer = setTimeout(() => {
        debounceTimer = undefined
        drainNow(reason)
      }, debounceMs)
    },
    async stop() {
      stopped = true
      abort.abort()
      clearTimeout(debounceTimer)
      clearTimeout(recheckTimer)
      await running
    },
    async idle() {
      for (;;) {
        if (debounceTimer) await new Promise((r) => setTimeout(r, debounceMs + 1))
        else if (running) await running
        else return
      }
    },
  }
}

/** The first connection; one the server cuts is tried again, up to {@link START_TRIES} times. */
async function connectFirst(
  listen: () => Promise<void>,
  settings: WatcherSettings,
  report: Report,
  stopped: () => boolean,
): Promise<void> {
  const { reconnectMinMs, reconnectMaxMs } = settings
  for (let attempt = 1; ; attempt++) {
    try {
      return await listen()
    } catch (error) {
      if (attempt >= START_TRIES || !wasCut(error) || stopped()) throw error
      report(error, 'listen')
      await new Promise((r) => setTimeout(r, Math.min(reconnectMaxMs, reconnectMinMs * 2 ** (attempt - 1))))
    }
  }
}

/** The dedicated LISTEN connection: connects, reconnects with a doubling delay, pings. */
function createListener(
  options: WatcherOptions,
  settings: WatcherSettings,
  report: Report,
  events: { notified(): void; ready(reason: WakeReason): void },
) {
  const { channel, reconnectMinMs, reconnectMaxMs } = settings
  const quotedChannel = `"${channel.replaceAll('"', '""')}"`
  let stopped = false
  let client: ListenClient | undefined
  let listening = false
  let reconnectDelay = reconnectMinMs
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined

  /** The established connection `c` failed or ended (events of other clients are ignored). */
  function lost(c: ListenClient, error?: unknown) {
    if (c !== client || stopped) return
    listening = false
    client = undefined
    c.end().catch(() => {})
    report(error ?? new Error('the LISTEN connection ended'), 'listen')
    scheduleReconnect()
  }

  function scheduleReconnect() {
    if (stopped || reconnectTimer) return
    const delay = reconnectDelay
    reconnectDelay = Math.min(reconnectMaxMs, reconnectDelay * 2)
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined
      listen('reconnect').catch((error) => {
        report(error, 'listen')
        scheduleReconnect()
      })
    }, delay)
  }

  async function listen(reason: WakeReason): Promise<void> {
    const c = options.createClient()
    c.on('error', (error: unknown) => lost(c, error))
    c.on('end', () => lost(c))
    c.on('notification', (message: { channel?: string }) => {
      if (message.channel === channel) events.notified()
    })
    try {
      await c.connect()
      await c.query(`LISTEN ${quotedChannel}`)
    } catch (error) {
      await c.end().catch(() => {})
      throw error
    }
    if (stopped) {
      await c.end().catch(() => {})
      return
    }
    client = c
    listening = true
    reconnectDelay = reconnectMinMs
    try {
      options.onListening?.()
    } catch {
      // ignore
    }
    events.ready(reason)
  }

  return {
    get listening() {
      return listening
    },
    connectFirst: () =>
      connectFirst(
        () => listen('start'),
        settings,
        report,
        () => stopped,
      ),
    ping() {
      const c = client
      if (c) c.query('SELECT 1').catch((error) => lost(c, error))
    },
    /** No reconnect from now on; `listening` turns false. */
    halt() {
      stopped = true
      clearTimeout(reconnectTimer)
      listening = false
    },
    async close() {
      const c = client
      client = undefined
      await c?.end().catch(() => {})
    },
  }
}

/** The callbacks, each preceded by a log line when a logger is given. */
function withLogging(options: WatcherOptions, settings: WatcherSettings): WatcherOptions {
  const logger = options.logger
  if (!logger) return options
  return {
    ...options,
    onListening() {
      log(logger, 'info', `listening for notifications (poll every ${settings.pollMs} ms)`)
      options.onListening?.()
    },
    onDrain(result, reason) {
      const { published, retried, dead, remaining, durationMs } = result
      log(
        logger,
        'info',
        `drain (${reason}): published ${published}, retried ${retried}, dead ${dead}, remaining ${remaining} (${durationMs} ms)`,
        { reason, published, retried, dead, remaining, durationMs },
      )
      options.onDrain?.(result, reason)
    },
    onError(error, where) {
      if (where === 'listen')
        log(logger, 'warn', `LISTEN connection: ${coerceError(error, 500)} (reconnecting)`, { where })
      else log(logger, 'error', `drain: ${coerceError(error, 500)}`, { where })
      options.onError?.(error, where)
    },
  }
}
