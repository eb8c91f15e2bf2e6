/**
 * Watch mode: drain as soon as a row is committed, woken by PostgreSQL `NOTIFY` (the outbox
 * table's trigger sends one per writing statement on channel `outbox_event`), with a polling
 * fallback for what notifications cannot cover (rows whose retry backoff ends, a lost
 * connection) and automatic reconnection.
 * @module
 */
import { sqlState } from './db.js'
import type { DrainResult, Engine, WaitingRow } from './engine.js'
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
 * @param [pollMs=5000] - polling fallback: the leading watcher drains at least this often,
 *   notifications or not; a standby looks at the row first in line this often (see {@link createWatcher})
 * @param [debounceMs=20] - notifications within this window share one drain
 * @param [reconnectMinMs=250] - first reconnect delay; doubles up to `reconnectMaxMs`
 * @param [reconnectMaxMs=30000] - cap of the reconnect delay
 * @param [recheckMinMs=50] - first delay of a re-drain when due rows were not claimable yet; doubles up to `pollMs`
 * @param [drain] - options of each drain (`maxEvents`, `budgetMs`, `topics`)
 * @param [logger] - a pino-compatible logger: LISTEN and drains that did something at info,
 *   failures at error (a lost LISTEN connection at warn); in addition to the callbacks
 */
export interface WatcherOptions {
  /**
   * What drains. Without `firstWaiting`, a watcher that does not lead drains at each poll
   * instead of only when the row first in line stayed unclaimed (see {@link createWatcher}).
   */
  engine: Pick<Engine, 'drain'> & Partial<Pick<Engine, 'firstWaiting'>>
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
  /**
   * LISTEN is active: after start and after each reconnect of the leading watcher, and when a
   * standby takes the lead (a standby does not LISTEN, see {@link createWatcher}). Not when the
   * leader LISTENs again after a flow that kept it draining.
   */
  onListening?: (() => void) | undefined
  logger?: Logger | undefined
}

/**
 * Why a drain ran. `standby`: a watcher that does not lead found the row first in line unclaimed
 * since its last poll, or (after such a drain) still waiting for longer than `pollMs`.
 * `relisten`: the leader LISTENs again after a run of drains during which it did not (see
 * {@link createWatcher}), and looks for rows committed meanwhile.
 */
export type WakeReason =
  | 'start'
  | 'notify'
  | 'poll'
  | 'reconnect'
  | 'more'
  | 'recheck'
  | 'standby'
  | 'relisten'

/** What {@link createWatcher} returns. */
export interface Watcher {
  /**
   * Connects, LISTENs and drains once. Rejects only if the FIRST connection cannot be made (a
   * first connection that the server cuts is tried again, up to 5 times).
   */
  start(): Promise<void>
  /** Stops: no new drain, the running one stops after its batch, the connection closes. */
  stop(): Promise<void>
  /**
   * True while its connection is up: the leading watcher LISTENs on it (except while a flow keeps
   * it draining, see {@link createWatcher}), a standby pings on it and asks for the lead there.
   */
  readonly listening: boolean
  /**
   * True while this watcher answers notifications: of the watchers on one database, channel and
   * topic filter, one at a time does (see {@link createWatcher}).
   */
  readonly leading: boolean
  /**
   * Resolves when no drain is running or scheduled and no LISTEN after a flow is in flight
   * (tests; on a connection gone silent, that LISTEN waits until the connection is found dead).
   */
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
  // node-postgres: a query on a client whose connection failed meanwhile ("… is not queryable").
  return /Connection terminated unexpectedly|ECONNRESET|terminating connection|not queryable/i.test(message)
}

/** Tries of the first connection when it is cut (see {@link wasCut}). */
const START_TRIES = 5

/**
 * The first key of the session advisory lock the leading watcher's LISTEN connection holds
 * ("outbox" + 2, as `int4`: the claim and purge locks use "outbox" and "outbox" + 1 as `int8`,
 * a different key space); the second key is a hash of the channel and the topic filter.
 */
export const WATCH_LEAD_LOCK_KEY = 0x6f757402

/** The lock attempt of the LISTEN connection (see {@link WATCH_LEAD_LOCK_KEY}). */
function tryLeadStatement(channel: string, topics: string[] | undefined): string {
  const scope = JSON.stringify([channel, [...(topics ?? [])].sort()])
  return `SELECT pg_try_advisory_lock(${WATCH_LEAD_LOCK_KEY}, hashtext('${scope.replaceAll("'", "''")}')) AS leader`
}

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
 * Several watchers on one table: every commit notifies each of them, and each would run a drain
 * for a few rows that the others' claims mostly took already (four watchers at one row per
 * transaction slowed the writers to 0.37 × what one watcher allowed). So one watcher leads: the
 * one whose LISTEN connection holds the session advisory lock of its database, channel and topic
 * filter ({@link WATCH_LEAD_LOCK_KEY}) answers notifications and drains at each poll. The others
 * are standbys: at each poll they look at the row first in line (`engine.firstWaiting`: pending,
 * due, not leased, not held behind its key) and drain only when it is the row they found at
 * their last poll, i.e. no relay claimed it for a whole `pollMs` (a frozen or stuck leader). A
 * leader that keeps up, or one that is behind but working through a backlog, moves that row on,
 * and the standbys leave the table alone: four watchers drained each other's keys' windows and
 * slowed a steady flow to half of what one watcher carried. A standby that drained goes on
 * (`'more'`) only while the row first in line moved on and the new one has waited longer than
 * `pollMs` too (a backlog no relay serves), and leaves rows it could not claim to its next poll.
 * When the leader's connection ends, the lock goes with it and another watcher takes it at its
 * next poll (within `pollMs`); a leader that is frozen keeps the lock, and the standbys publish
 * in its place within two polls (`2 × pollMs`). A standby does not LISTEN (every notification
 * would cost its connection's backend and its process a wake-up, per commit, for nothing): it
 * runs `LISTEN` when it takes the lead, then drains once.
 *
 * For the same reason the leader does not listen while a flow keeps it draining: when its drains
 * have followed each other for 100 ms and a notification comes during one (so another drain
 * follows it anyway), or one is followed at once by another (`'more'`), it runs `UNLISTEN` and
 * goes on; when its drains stop, it runs `LISTEN` again and drains once more (`'relisten'`),
 * since rows committed in between notified no one. Listening, its connection's backend was
 * woken once per commit to announce rows its next claim finds anyway: at one row per transaction
 * the database spent 181 µs per event on the relay, 117 µs without (bench, side by side).
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
  const drains = new DrainScheduler(options, settings, report, {
    standby: () => listener.standby,
    mute: () => listener.mute(),
    resume: () => listener.resume(),
  })
  // Rows committed while we were not listening got no notification we could see: drain on each (re)connect.
  const listener = new Listener(options, settings, report, {
    notified: () => {
      if (listener.leading) drains.wake('notify')
    },
    ready: (reason) => drains.drainNow(reason),
    relistened: () => drains.relistened(),
  })
  let started = false
  let stopped = false
  let pollTimer: ReturnType<typeof setInterval> | undefined

  return {
    get listening() {
      return listener.listening
    },

    get leading() {
      return listener.leading
    },

    async start() {
      if (started) throw new Error('watcher already started')
      started = true
      await listener.connectFirst()
      // stop() while the first connection was being made: arm nothing.
      if (stopped) return
      pollTimer = setInterval(() => {
        if (listener.standby) drains.standbyPoll()
        else drains.drainNow('poll')
        // Detects a silently dead connection (no FIN): a failing ping triggers a reconnect. A
        // watcher that does not lead tries to, in the same round trip.
        listener.ping()
      }, settings.pollMs)
    },

    async stop() {
      stopped = true
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
  /** The statement that tries to take the lead (see {@link WATCH_LEAD_LOCK_KEY}). */
  tryLead: string
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
    tryLead: tryLeadStatement(options.channel ?? 'outbox_event', options.drain?.topics),
    pollMs,
    debounceMs: validate('debounceMs', options.debounceMs ?? 20, 0),
    reconnectMinMs,
    reconnectMaxMs: validate('reconnectMaxMs', options.reconnectMaxMs ?? 30_000, reconnectMinMs),
    recheckMinMs: Math.min(pollMs, validate('recheckMinMs', options.recheckMinMs ?? 50, 1)),
  }
}

type Report = (error: unknown, where: 'drain' | 'listen') => void

/** How long drains must have followed each other before the leader stops listening. */
const BUSY_MS = 100

/** What the drains need of the LISTEN connection. */
interface Hearing {
  /** True while another watcher leads. */
  standby(): boolean
  /** The leader stops hearing notifications while its drains go on. */
  mute(): void
  /**
   * LISTENs again if it had stopped; once it does, the watcher looks for rows committed
   * meanwhile. Returns the LISTEN in flight (it never rejects), if any.
   */
  resume(): Promise<void> | undefined
}

/**
 * One drain at a time: a wake-up during a drain runs one more after it; notifications are
 * debounced; a drain that found due rows but could claim none is retried after a doubling delay,
 * and, once that delay has doubled, notifications until then wait for that retry. A standby
 * drains at a poll only when the row first in line did not move since its last poll. The leader
 * does not listen while its drains follow each other (see {@link createWatcher}).
 */
class DrainScheduler {
  private stopped = false
  private debounceTimer: ReturnType<typeof setTimeout> | undefined
  private recheckTimer: ReturnType<typeof setTimeout> | undefined
  private recheckDelay: number
  /** The recheck pending is not the first in a row: its delay has doubled at least once. */
  private backedOff = false
  private running: Promise<void> | undefined
  /** Why to drain once more after the drain running now. */
  private again: WakeReason | undefined
  private readonly abort = new AbortController()
  /** The row first in line at this standby's last poll (its `seq`). */
  private lastFirst: string | undefined
  /** A look of this standby in flight (`stop` and `idle` wait for it). */
  private looking: Promise<void> | undefined
  /** The leader's LISTEN after a run of drains, in flight (`idle` waits for it). */
  private resuming: Promise<void> | undefined
  /** When the drains running now started, one after the other (`performance.now()`). */
  private busySince = 0

  constructor(
    private readonly options: WatcherOptions,
    private readonly settings: WatcherSettings,
    private readonly report: Report,
    private readonly hearing: Hearing,
  ) {
    this.recheckDelay = settings.recheckMinMs
  }

  private standby(): boolean {
    return this.hearing.standby()
  }

  /** Drains now, or once more right after the drain running now. */
  drainNow(reason: WakeReason): void {
    if (this.stopped) return
    if (this.running) {
      this.again ??= reason
      // The drain after this one finds what was notified: no need to hear more until drains stop.
      if (reason === 'notify') this.muteIfBusy()
      return
    }
    this.running = this.drainLoop(reason).finally(() => {
      this.running = undefined
      // After `running` is cleared: the drain that LISTEN starts must not find this loop running.
      if (!this.stopped) this.resumeListening()
    })
  }

  /**
   * A standby's poll: drains when the row first in line is the one of its last poll (no relay
   * claimed it since), or when it cannot tell (an engine without `firstWaiting`, a failed look).
   */
  standbyPoll(): void {
    const firstWaiting = this.lookFirst()
    if (!firstWaiting) {
      this.drainNow('poll')
      return
    }
    if (this.stopped || this.running || this.looking) return
    const look = async () => {
      let first: WaitingRow | undefined
      try {
        first = await firstWaiting()
      } catch (error) {
        this.report(error, 'drain')
        this.lastFirst = undefined
        this.drainNow('poll')
        return
      }
      const stalled = first !== undefined && first.seq === this.lastFirst
      this.lastFirst = first?.seq
      if (stalled) this.drainNow('standby')
    }
    this.looking = look()
      .catch((error: unknown) => this.report(error, 'drain'))
      .finally(() => {
        this.looking = undefined
      })
  }

  /**
   * Drains after `debounceMs`, together with every other wake-up until then. While a recheck is
   * pending that has backed off (drains in a row found due rows and could claim none), the
   * recheck answers the wake-up: rows held back by other relays' batches or by open transactions
   * stay held whatever is notified, and a claim that finds nothing has walked every held window
   * of the backlog. The first recheck lets notifications through: the due row its drain counted
   * is often one committed just after that drain's claim, which its notification announces
   * (at 1,000 events/s, 6 to 10 times in 15 s such a row waited 50 ms for the recheck).
   */
  wake(reason: WakeReason): void {
    if (this.stopped || (this.recheckTimer && this.backedOff)) return
    const { debounceMs } = this.settings
    if (debounceMs === 0) {
      this.drainNow(reason)
      return
    }
    if (this.debounceTimer) return
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined
      this.drainNow(reason)
    }, debounceMs)
  }

  /**
   * LISTEN is back after a run of drains: drains at once for the rows committed meanwhile (a flow
   * that kept it busy goes on, most likely), unless a recheck is due, which then does.
   */
  relistened(): void {
    if (!this.recheckTimer) this.drainNow('relisten')
  }

  /** Aborts the drain running (its batch in flight finishes) and starts no other. */
  async stop(): Promise<void> {
    this.stopped = true
    this.abort.abort()
    clearTimeout(this.debounceTimer)
    clearTimeout(this.recheckTimer)
    await this.looking
    await this.running
  }

  /** Resolves when no drain runs or waits for its debounce. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.debounceTimer) await new Promise((r) => setTimeout(r, this.settings.debounceMs + 1))
      else if (this.running) await this.running
      else if (this.looking) await this.looking
      else if (this.resuming) await this.resuming
      else return
    }
  }

  private async drainLoop(reason: WakeReason): Promise<void> {
    this.busySince = performance.now()
    let next: WakeReason | undefined = reason
    while (next && !this.stopped) {
      const why: WakeReason = next
      this.again = undefined
      next = undefined
      try {
        next = this.afterDrain(
          await this.options.engine.drain({ ...this.options.drain, signal: this.abort.signal }),
          why,
        )
        if (next === 'more' && this.standby())
          next = (await this.stillWaiting(this.lastFirst)) ? 'standby' : undefined
      } catch (error) {
        this.report(error, 'drain')
      }
      next = this.again ?? next
      if (next === 'more') this.muteIfBusy()
    }
  }

  /**
   * The leader stops listening once its drains have followed each other for {@link BUSY_MS}: a
   * flow keeps it busy. Not sooner: at 1,000 events/s in commits of 10 rows its drains last 6 to
   * 40 ms, and stopping and starting to listen around each of them added a drain right after
   * each, which often claimed nothing but counted a row committed a moment after its claim as due
   * and unclaimable, then backed off to a recheck that notifications then waited for (commit →
   * publish p99 rose from 28 to 50 ms).
   */
  private muteIfBusy(): void {
    if (!this.standby() && performance.now() - this.busySince >= BUSY_MS) this.hearing.mute()
  }

  /** Not awaited: a LISTEN on a connection gone silent must not hold up the drains. */
  private resumeListening(): void {
    const listening = this.hearing.resume()
    if (!listening) return
    this.resuming = listening
    listening.finally(() => {
      if (this.resuming === listening) this.resuming = undefined
    })
  }

  /** Tells `onDrain`; returns `'more'` when the drain stopped with due rows left after publishing. */
  private afterDrain(result: DrainResult, why: WakeReason): WakeReason | undefined {
    const worked = result.published + result.retried + result.dead > 0
    if (worked) {
      try {
        this.options.onDrain?.(result, why)
      } catch {
        // ignore
      }
    }
    if (result.published > 0 || result.remaining === 0) this.recheckDelay = this.settings.recheckMinMs
    if (result.published > 0 && result.remaining > 0) return 'more'
    // A standby leaves rows it could not claim to its next poll.
    if (result.remaining > 0 && !worked && !this.standby()) this.scheduleRecheck()
    return undefined
  }

  /** The engine's look at the row first in line among this watcher's topics; undefined without one. */
  private lookFirst(): (() => Promise<WaitingRow | undefined>) | undefined {
    const firstWaiting = this.options.engine.firstWaiting
    if (!firstWaiting) return undefined
    const topics = this.options.drain?.topics
    return () => firstWaiting({ topics })
  }

  /**
   * After a standby's drain: whether the row first in line moved on from `before` (the row that
   * made it drain: the drain claimed it) to a row that has waited longer than `pollMs` too. The
   * row it remembers for its next poll is the one found here.
   */
  private async stillWaiting(before: string | undefined): Promise<boolean> {
    const firstWaiting = this.lookFirst()
    if (!firstWaiting) return true
    try {
      const first = await firstWaiting()
      this.lastFirst = first?.seq
      return first !== undefined && first.seq !== before && first.waitedMs > this.settings.pollMs
    } catch (error) {
      this.report(error, 'drain')
      return false
    }
  }

  private scheduleRecheck(): void {
    if (this.stopped || this.recheckTimer) return
    const delay = this.recheckDelay
    this.backedOff = delay > this.settings.recheckMinMs
    this.recheckDelay = Math.min(this.settings.pollMs, this.recheckDelay * 2)
    this.recheckTimer = setTimeout(() => {
      this.recheckTimer = undefined
      this.drainNow('recheck')
    }, delay)
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
class Listener {
  private stopped = false
  private client: ListenClient | undefined
  private isListening = false
  private isLeading = false
  /** The leader ran UNLISTEN while its drains go on (see {@link createWatcher}). */
  private muted = false
  /** The connection a LISTEN after {@link mute} is in flight on. */
  private resumingOn: ListenClient | undefined
  private asking = false
  private reconnectDelay: number
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly options: WatcherOptions,
    private readonly settings: WatcherSettings,
    private readonly report: Report,
    private readonly events: { notified(): void; ready(reason: WakeReason): void; relistened(): void },
  ) {
    this.reconnectDelay = settings.reconnectMinMs
  }

  get listening(): boolean {
    return this.isListening
  }

  get leading(): boolean {
    return this.isListening && this.isLeading
  }

  /** Listening while another watcher leads (a watcher not listening drains at each poll). */
  get standby(): boolean {
    return this.isListening && !this.isLeading
  }

  /** The first connection (see {@link connectFirst}). */
  connectFirst(): Promise<void> {
    return connectFirst(
      () => this.listen('start'),
      this.settings,
      this.report,
      () => this.stopped,
    )
  }

  /** A query on the connection, so a dead one is noticed between drains; a standby asks for the lead. */
  ping(): void {
    const c = this.client
    if (!c) return
    if (this.isLeading) c.query('SELECT 1').catch((error) => this.lost(c, error))
    else if (!this.asking) {
      // One try at a time: a try slower than pollMs would otherwise LISTEN twice.
      this.asking = true
      this.takeLead(c)
        .catch((error) => this.lost(c, error))
        .finally(() => {
          this.asking = false
        })
    }
  }

  /**
   * A standby's try for the lead. Once it has it, it LISTENs and drains once: rows committed
   * before LISTEN sent notifications it did not hear.
   */
  private async takeLead(c: ListenClient): Promise<void> {
    if (!(await this.tryLead(c))) return
    await this.startListening(c)
    if (c !== this.client || this.stopped) return
    this.isLeading = true
    this.announce()
    this.events.ready('poll')
  }

  /** Whether this connection holds the lead now (a leader never asks again). */
  private async tryLead(c: ListenClient): Promise<boolean> {
    const answer = (await c.query(this.settings.tryLead)) as { rows?: Array<{ leader?: unknown }> }
    // An answer without rows (a client that does not return them) leads: every watcher answers
    // notifications, as without the lock.
    return answer?.rows?.[0]?.leader !== false
  }

  private async startListening(c: ListenClient): Promise<void> {
    await c.query(`LISTEN ${this.quotedChannel()}`)
  }

  private quotedChannel(): string {
    return `"${this.settings.channel.replaceAll('"', '""')}"`
  }

  /**
   * The leader stops hearing notifications while its drains follow each other. Not awaited: a
   * notification that comes before UNLISTEN takes effect only asks for the drain that runs anyway.
   */
  mute(): void {
    const c = this.client
    if (!c || !this.isLeading || this.muted || this.stopped) return
    this.muted = true
    c.query(`UNLISTEN ${this.quotedChannel()}`).catch((error) => this.lost(c, error))
  }

  /**
   * LISTENs again after {@link mute}, then tells `relistened` (rows committed while nobody
   * listened notified no one). Not awaited by the drains: on a connection gone silent, LISTEN
   * waits until the ping notices, and drains waiting for it would stop the watcher. A connection
   * lost meanwhile reconnects, LISTENs and drains by itself.
   */
  resume(): Promise<void> | undefined {
    const c = this.client
    if (!c || !this.muted || this.stopped || this.resumingOn === c) return undefined
    this.resumingOn = c
    return this.startListening(c)
      .then(
        () => {
          if (c !== this.client || this.stopped) return
          this.muted = false
          this.events.relistened()
        },
        (error: unknown) => this.lost(c, error),
      )
      .finally(() => {
        if (this.resumingOn === c) this.resumingOn = undefined
      })
  }

  /** Tells `onListening` that LISTEN is active. */
  private announce(): void {
    try {
      this.options.onListening?.()
    } catch {
      // ignore
    }
  }

  /** No reconnect from now on; `listening` turns false. */
  halt(): void {
    this.stopped = true
    clearTimeout(this.reconnectTimer)
    this.isListening = false
    this.isLeading = false
  }

  async close(): Promise<void> {
    const c = this.client
    this.client = undefined
    await c?.end().catch(() => {})
  }

  /** The established connection `c` failed or ended (events of other clients are ignored). */
  private lost(c: ListenClient, error?: unknown): void {
    if (c !== this.client || this.stopped) return
    this.isListening = false
    this.isLeading = false
    this.muted = false
    this.client = undefined
    c.end().catch(() => {})
    this.report(error ?? new Error('the LISTEN connection ended'), 'listen')
    this.scheduleReconnect()
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return
    const delay = this.reconnectDelay
    this.reconnectDelay = Math.min(this.settings.reconnectMaxMs, this.reconnectDelay * 2)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      this.listen('reconnect').catch((error) => {
        this.report(error, 'listen')
        this.scheduleReconnect()
      })
    }, delay)
  }

  private async listen(reason: WakeReason): Promise<void> {
    const { channel } = this.settings
    const c = this.options.createClient()
    c.on('error', (error: unknown) => this.lost(c, error))
    c.on('end', () => this.lost(c))
    c.on('notification', (message: { channel?: string }) => {
      if (message.channel === channel) this.events.notified()
    })
    let leader: boolean
    try {
      await c.connect()
      leader = await this.tryLead(c)
      if (leader) await this.startListening(c)
    } catch (error) {
      await c.end().catch(() => {})
      throw error
    }
    if (this.stopped) {
      await c.end().catch(() => {})
      return
    }
    this.client = c
    this.isListening = true
    this.isLeading = leader
    this.muted = false
    this.reconnectDelay = this.settings.reconnectMinMs
    if (leader) this.announce()
    else if (this.options.logger)
      log(
        this.options.logger,
        'info',
        `standing by: another watcher leads (poll every ${this.settings.pollMs} ms)`,
      )
    this.events.ready(reason)
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
