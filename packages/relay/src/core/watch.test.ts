import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DrainResult, WaitingRow } from './engine.js'
import { createWatcher, type ListenClient, type WakeReason, type Watcher } from './watch.js'

class FakeClient extends EventEmitter implements ListenClient {
  queries: string[] = []
  ended = false
  failConnect = false
  failQuery = false
  /** LISTEN never answers (a connection gone silent). */
  hangListen = false
  /** The next query fails with this message. */
  nextQueryError: string | undefined
  async connect() {
    if (this.failConnect) throw new Error('ECONNREFUSED')
  }
  /** What the lead lock answers (another watcher holds it when false). */
  static leader = true
  async query(text: string) {
    this.queries.push(text)
    if (this.failQuery) throw new Error('connection terminated')
    const error = this.nextQueryError
    this.nextQueryError = undefined
    if (error) throw new Error(error)
    if (this.hangListen && text.startsWith('LISTEN')) await new Promise(() => {})
    if (text.includes('pg_try_advisory_lock')) return { rows: [{ leader: FakeClient.leader }] }
    return {}
  }
  async end() {
    this.ended = true
  }
  notify(channel = 'outbox_event') {
    this.emit('notification', { channel, payload: '' })
  }
}

const result = (r: Partial<DrainResult> = {}): DrainResult => ({
  published: 0,
  retried: 0,
  dead: 0,
  remaining: 0,
  durationMs: 1,
  ...r,
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let watcher: Watcher | undefined
afterEach(async () => {
  await watcher?.stop()
  watcher = undefined
  FakeClient.leader = true
})

function setup(
  options: {
    results?: DrainResult[]
    pollMs?: number
    debounceMs?: number
    failFirstConnects?: number
    firstWaiting?: () => Promise<WaitingRow | undefined>
    /** Each drain takes this long: drains that follow each other for 100 ms make the leader stop listening. */
    drainMs?: number
    recheckMinMs?: number
  } = {},
) {
  const clients: FakeClient[] = []
  let connects = 0
  const queue = [...(options.results ?? [])]
  const drain = vi.fn(async () => {
    if (options.drainMs) await sleep(options.drainMs)
    return queue.shift() ?? result()
  })
  const errors: Array<[unknown, string]> = []
  const reasons: WakeReason[] = []
  watcher = createWatcher({
    engine: options.firstWaiting ? { drain, firstWaiting: options.firstWaiting } : { drain },
    createClient: () => {
      const c = new FakeClient()
      c.failConnect = connects++ < (options.failFirstConnects ?? 0)
      clients.push(c)
      return c
    },
    pollMs: options.pollMs ?? 60_000,
    debounceMs: options.debounceMs ?? 5,
    reconnectMinMs: 10,
    reconnectMaxMs: 40,
    recheckMinMs: options.recheckMinMs ?? 5,
    onError: (e, where) => errors.push([e, where]),
    onDrain: (_result, reason) => reasons.push(reason),
  })
  return { watcher, clients, drain, errors, reasons }
}

describe('createWatcher', () => {
  it('Should LISTEN, drain once at start, and drain on a notification', async () => {
    const { watcher, clients, drain } = setup()
    await watcher.start()
    expect(watcher.listening).toBe(true)
    expect(clients[0]?.queries).toEqual([
      expect.stringContaining('pg_try_advisory_lock'),
      'LISTEN "outbox_event"',
    ])
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(1)
    clients[0]?.notify()
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(2)
    clients[0]?.notify('other_channel')
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(2)
  })

  it('Should debounce a burst of notifications into one drain', async () => {
    const { watcher, clients, drain } = setup({ debounceMs: 30 })
    await watcher.start()
    await watcher.idle()
    for (let i = 0; i < 20; i++) clients[0]?.notify()
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(2)
  })

  it('Should drain again after a notification that arrived during a drain, never overlapping', async () => {
    const clients: FakeClient[] = []
    let active = 0
    let maxActive = 0
    let release!: () => void
    const drain = vi.fn(async () => {
      active++
      maxActive = Math.max(maxActive, active)
      if (drain.mock.calls.length === 1) await new Promise<void>((r) => (release = r))
      active--
      return result()
    })
    watcher = createWatcher({
      engine: { drain },
      createClient: () => {
        const c = new FakeClient()
        clients.push(c)
        return c
      },
      pollMs: 60_000,
      debounceMs: 0,
    })
    await watcher.start()
    clients[0]?.notify()
    clients[0]?.notify()
    await sleep(5)
    expect(drain).toHaveBeenCalledTimes(1)
    release()
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(2)
    expect(maxActive).toBe(1)
  })

  it('Should keep draining while a drain published and rows remain, then stop', async () => {
    const { watcher, drain, clients } = setup({
      results: [result({ published: 10, remaining: 5 }), result({ published: 5, remaining: 0 })],
    })
    await watcher.start()
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(2)
    // Drains that followed each other for less than 100 ms: it listened all along.
    expect(clients[0]?.queries.filter((q) => q.includes('LISTEN'))).toEqual(['LISTEN "outbox_event"'])
  })

  /** A drain that leaves rows ('more'), the one after it, and the drain that follows LISTEN again. */
  const moreThenRelisten = () => [
    result({ published: 10, remaining: 5 }),
    result({ published: 5, remaining: 0 }),
    result({ published: 1, remaining: 0 }),
  ]

  it('Should not listen while drains keep following each other, then LISTEN and drain once more', async () => {
    const { watcher, drain, clients, reasons } = setup({
      drainMs: 110,
      results: moreThenRelisten(),
    })
    await watcher.start()
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(3)
    expect(reasons).toEqual(['start', 'more', 'relisten'])
    expect(clients[0]?.queries.slice(1)).toEqual([
      'LISTEN "outbox_event"',
      'UNLISTEN "outbox_event"',
      'LISTEN "outbox_event"',
    ])
    expect(watcher.listening).toBe(true)
  })

  it('Should drain at once after LISTEN again, for rows committed while it did not listen', async () => {
    const { watcher, drain, clients, reasons } = setup({
      drainMs: 110,
      debounceMs: 5_000,
      results: moreThenRelisten(),
    })
    await watcher.start()
    // Not a debounced drain: it follows LISTEN at once.
    await vi.waitFor(() => expect(drain).toHaveBeenCalledTimes(3), { timeout: 2_000 })
    await watcher.idle()
    expect(reasons).toEqual(['start', 'more', 'relisten'])
    expect(clients[0]?.queries.filter((q) => q.includes('LISTEN'))).toHaveLength(3)
  })

  it('Should go on draining at each poll when its LISTEN after a run of drains never answers (a silent connection)', async () => {
    const { watcher, drain, clients } = setup({
      drainMs: 110,
      pollMs: 150,
      results: [result({ published: 10, remaining: 5 }), result({ published: 5, remaining: 0 })],
    })
    await watcher.start()
    const client = clients[0] as FakeClient
    client.hangListen = true
    await vi.waitFor(() => expect(client.queries.filter((q) => q.includes('LISTEN'))).toHaveLength(3))
    const before = drain.mock.calls.length
    // No notification comes on a silent connection: the polls drain, the LISTEN in flight aside.
    await vi.waitFor(() => expect(drain.mock.calls.length).toBeGreaterThanOrEqual(before + 2), {
      timeout: 3_000,
    })
  })

  it('Should stop listening while notifications keep coming during its drains, and listen again when they stop', async () => {
    let release!: () => void
    const { watcher, drain, clients, reasons } = setup({ debounceMs: 0 })
    drain.mockImplementation(async () => {
      if (drain.mock.calls.length === 2) await new Promise<void>((r) => (release = r))
      return result({ published: 1 })
    })
    await watcher.start()
    await watcher.idle()
    clients[0]?.notify()
    await vi.waitFor(() => expect(release).toBeTypeOf('function'))
    await sleep(110) // a drain that has run for 100 ms: a flow keeps it busy
    clients[0]?.notify() // during the drain
    release()
    await watcher.idle()
    expect(reasons).toEqual(['start', 'notify', 'notify', 'relisten'])
    expect(clients[0]?.queries.filter((q) => q.includes('LISTEN'))).toEqual([
      'LISTEN "outbox_event"',
      'UNLISTEN "outbox_event"',
      'LISTEN "outbox_event"',
    ])
    // Listening again: one notification, one drain, no UNLISTEN.
    clients[0]?.notify()
    await watcher.idle()
    expect(reasons.at(-1)).toBe('notify')
    expect(drain).toHaveBeenCalledTimes(5)
    expect(clients[0]?.queries.filter((q) => q.includes('LISTEN'))).toHaveLength(3)
  })

  it('Should, when the connection is lost while it does not listen, leave the drain to the reconnect', async () => {
    const { watcher, drain, clients, reasons } = setup()
    let more = 3
    drain.mockImplementation(async () => {
      await sleep(110)
      if (drain.mock.calls.length === 2) {
        clients[0]?.emit('error', new Error('terminating connection due to administrator command'))
        clients[0]?.emit('end')
      }
      return result({ published: 1, remaining: more-- > 0 ? 1 : 0 })
    })
    await watcher.start()
    await vi.waitFor(() => expect(clients).toHaveLength(2))
    await vi.waitFor(() => expect(watcher.listening).toBe(true))
    await watcher.idle()
    expect(reasons).not.toContain('relisten')
    expect(reasons).toContain('reconnect')
    expect(clients[1]?.queries.filter((q) => q.includes('LISTEN'))).toEqual(['LISTEN "outbox_event"'])
  })

  it('Should LISTEN again but leave the drain to a pending recheck', async () => {
    const { watcher, drain, clients, reasons } = setup({
      drainMs: 110,
      results: [result({ published: 3, remaining: 2 }), result({ remaining: 2 }), result({ published: 2 })],
    })
    await watcher.start()
    await watcher.idle()
    await vi.waitFor(() => expect(drain).toHaveBeenCalledTimes(3))
    await watcher.idle()
    expect(reasons).toEqual(['start', 'recheck'])
    expect(clients[0]?.queries.filter((q) => q.includes('LISTEN'))).toEqual([
      'LISTEN "outbox_event"',
      'UNLISTEN "outbox_event"',
      'LISTEN "outbox_event"',
    ])
  })

  it('Should not loop when rows remain but nothing was published (broker down, blocked keys)', async () => {
    const { watcher, drain } = setup({ results: [result({ retried: 3, remaining: 3 })] })
    await watcher.start()
    await watcher.idle()
    await sleep(20)
    expect(drain).toHaveBeenCalledTimes(1)
  })

  it('Should re-drain soon, backing off, when due rows could not be claimed yet (open transaction elsewhere)', async () => {
    const blocked = result({ remaining: 2 })
    const { watcher, drain } = setup({
      results: [blocked, blocked, blocked, result({ published: 2, remaining: 0 })],
    })
    await watcher.start()
    await vi.waitFor(() => expect(drain).toHaveBeenCalledTimes(4), { timeout: 2_000 })
    await sleep(50)
    expect(drain).toHaveBeenCalledTimes(4) // nothing left: no more rechecks
  })

  it('Should leave notifications to the recheck after a drain that could claim nothing of what is due', async () => {
    // Other relays' batches hold every due row: each drain claims nothing, the recheck backs off.
    const { watcher, drain, clients } = setup({
      results: Array.from({ length: 50 }, () => result({ remaining: 9 })),
    })
    const drains: number[] = []
    drain.mockImplementation(async () => {
      drains.push(performance.now())
      return result({ remaining: 9 })
    })
    await watcher.start()
    const started = performance.now()
    // A notification every 2 ms for 150 ms (debounce 5 ms): before, about one drain per debounce.
    while (performance.now() - started < 150) {
      clients[0]?.notify()
      await sleep(2)
    }
    await watcher.idle()
    // The recheck delays double from 5 ms: 5, 10, 20, 40, 80 ms. A few drains, not thirty.
    expect(drains.length).toBeGreaterThanOrEqual(3)
    expect(drains.length).toBeLessThanOrEqual(7)
  })

  it('Should let notifications through while the first recheck is pending, not once rechecks back off', async () => {
    const stuck = result({ remaining: 1 })
    const { watcher, drain, clients } = setup({ recheckMinMs: 400, results: [stuck, stuck, stuck] })
    await watcher.start()
    await vi.waitFor(() => expect(drain).toHaveBeenCalledTimes(1))
    // The first recheck is 400 ms away: a notification (a row committed after that claim) drains.
    clients[0]?.notify()
    await vi.waitFor(() => expect(drain).toHaveBeenCalledTimes(2), { timeout: 300 })
    // The recheck drains, finds the same, and backs off to 800 ms: notifications now wait for it.
    await vi.waitFor(() => expect(drain).toHaveBeenCalledTimes(3), { timeout: 1_000 })
    clients[0]?.notify()
    await sleep(200)
    expect(drain).toHaveBeenCalledTimes(3)
  })

  it('Should leave notifications to the watcher that leads, and drain at each poll while it does not', async () => {
    FakeClient.leader = false
    const { watcher, drain, clients } = setup({ pollMs: 300 })
    await watcher.start()
    await watcher.idle()
    expect(watcher.leading).toBe(false)
    expect(drain).toHaveBeenCalledTimes(1) // the start
    // A standby does not LISTEN: notifications would cost it a wake-up per commit for nothing.
    expect(clients[0]?.queries).toEqual([expect.stringContaining('pg_try_advisory_lock')])
    for (let i = 0; i < 10; i++) {
      clients[0]?.notify()
      await sleep(2)
    }
    await sleep(15)
    expect(drain).toHaveBeenCalledTimes(1) // no poll yet, and no notification answered
    // The leader's connection ended: the lock is free, the next poll takes it.
    FakeClient.leader = true
    await vi.waitFor(() => expect(watcher.leading).toBe(true), { timeout: 1_000 })
    // It LISTENs once it leads, and drains once (what was committed before LISTEN went unheard).
    expect(clients[0]?.queries.filter((q) => q.startsWith('LISTEN'))).toEqual(['LISTEN "outbox_event"'])
    await vi.waitFor(() => expect(drain.mock.calls.length).toBeGreaterThan(1), { timeout: 1_000 })
    await watcher.idle()
    const before = drain.mock.calls.length
    clients[0]?.notify()
    await vi.waitFor(() => expect(drain.mock.calls.length).toBeGreaterThan(before), { timeout: 1_000 })
    // A leader does not ask for the lock again.
    const asked = clients[0]?.queries.filter((q) => q.includes('pg_try_advisory_lock')).length
    await sleep(100)
    expect(clients[0]?.queries.filter((q) => q.includes('pg_try_advisory_lock')).length).toBe(asked)
  })

  it('Should, as a standby, drain at a poll only when the row first in line did not move since the last poll', async () => {
    FakeClient.leader = false
    // The row first in line at each look: moving on (a leader keeps up), then stuck (it froze).
    const firsts = ['1', '5', '9', '12', '12', '12']
    const firstWaiting = vi.fn(async () => {
      const seq = firsts.shift()
      return seq === undefined ? undefined : { seq, waitedMs: 10 }
    })
    const { watcher, drain } = setup({ pollMs: 20, firstWaiting })
    await watcher.start()
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(1) // the start, leader or not
    await vi.waitFor(() => expect(firstWaiting.mock.calls.length).toBeGreaterThanOrEqual(6), {
      timeout: 2_000,
    })
    await watcher.idle()
    // 1, 5, 9, 12: moved at every poll, no drain; 12 again: a drain; 12 again: another.
    expect(drain).toHaveBeenCalledTimes(3)
    await sleep(100)
    expect(drain).toHaveBeenCalledTimes(3) // nothing waits any more
  })

  it('Should, as a standby, go on after its drain only while the row first in line waited past pollMs', async () => {
    FakeClient.leader = false
    const seen: Array<WaitingRow | undefined> = [
      { seq: '3', waitedMs: 1 },
      { seq: '3', waitedMs: 300 }, // stuck: drain
      { seq: '40', waitedMs: 500 }, // after that drain: still far behind, go on
      { seq: '90', waitedMs: 5 }, // after the next: caught up, stop
    ]
    const firstWaiting = vi.fn(async () => seen.shift())
    const more = result({ published: 10, remaining: 50 })
    const { watcher, drain, clients } = setup({
      pollMs: 200,
      firstWaiting,
      results: [result(), more, more, more],
    })
    await watcher.start()
    await vi.waitFor(() => expect(drain).toHaveBeenCalledTimes(3), { timeout: 2_000 })
    await watcher.idle()
    expect(firstWaiting).toHaveBeenCalledTimes(4)
    expect(drain).toHaveBeenCalledTimes(3)
    // It never listened: nothing to stop or start again.
    expect(clients[0]?.queries.filter((q) => q.includes('LISTEN'))).toEqual([])
  })

  it('Should, as a standby, not go on draining behind a first row that its drains do not move (a held key)', async () => {
    FakeClient.leader = false
    // A row held for good (behind a dead row, say) waits for an hour; each drain still publishes
    // a little of the steady flow the leader serves, and rows remain.
    const firstWaiting = vi.fn(async () => ({ seq: '7', waitedMs: 3_600_000 }))
    const drain = vi.fn(async () => result({ published: 1, remaining: 5 }))
    watcher = createWatcher({
      engine: { drain, firstWaiting },
      createClient: () => new FakeClient(),
      pollMs: 100,
      recheckMinMs: 5,
    })
    await watcher.start()
    await sleep(450)
    await watcher.stop()
    // The start, then at most one drain per poll after the first: not a drain after each drain.
    expect(drain.mock.calls.length).toBeLessThanOrEqual(6)
  })

  it('Should arm no poll when stopped while its first connection is made', async () => {
    let connected: () => void = () => {}
    const client = new FakeClient()
    client.connect = () => new Promise<void>((resolve) => (connected = resolve))
    const drain = vi.fn(async () => result())
    const w = createWatcher({ engine: { drain }, createClient: () => client, pollMs: 10 })
    const intervals = vi.spyOn(globalThis, 'setInterval')
    try {
      const starting = w.start()
      await sleep(5)
      const stopping = w.stop()
      connected()
      await starting
      await stopping
      // An interval armed after stop() would keep the process alive for nothing.
      expect(intervals).not.toHaveBeenCalled()
      expect(drain).not.toHaveBeenCalled()
    } finally {
      intervals.mockRestore()
    }
  })

  it('Should, as a standby, leave rows it could not claim to its next poll (no recheck)', async () => {
    FakeClient.leader = false
    const firstWaiting = vi.fn(async () => ({ seq: '7', waitedMs: 1 }))
    const stuck = result({ remaining: 3 })
    const { watcher, drain } = setup({ pollMs: 150, firstWaiting, results: [stuck, stuck, stuck, stuck] })
    await watcher.start()
    // The second poll finds row 7 again: a drain, which claims nothing of what is due.
    await vi.waitFor(() => expect(drain).toHaveBeenCalledTimes(2), { timeout: 2_000 })
    // A leader would recheck after 5, 10, 20, 40 ms; the standby waits for its next poll.
    await sleep(60)
    expect(drain).toHaveBeenCalledTimes(2)
  })

  it('Should, as a standby, report a failed look and drain anyway', async () => {
    FakeClient.leader = false
    const firstWaiting = vi.fn(async () => {
      throw new Error('connection refused')
    })
    const { watcher, drain, errors } = setup({ pollMs: 20, firstWaiting })
    await watcher.start()
    await vi.waitFor(() => expect(drain.mock.calls.length).toBeGreaterThanOrEqual(2), { timeout: 2_000 })
    expect(errors.some(([e, where]) => where === 'drain' && String(e).includes('connection refused'))).toBe(
      true,
    )
  })

  it('Should ask for the lead of its channel and topic filter, quoting them', () => {
    const statement = (channel: string, topics?: string[]) => {
      const client = new FakeClient()
      const w = createWatcher({
        engine: { drain: async () => result() },
        createClient: () => client,
        channel,
        drain: topics ? { topics } : undefined,
      })
      return w.start().then(async () => {
        await w.stop()
        return client.queries.find((q) => q.includes('pg_try_advisory_lock')) ?? ''
      })
    }
    return Promise.all([statement("it's"), statement('c', ['b', 'a']), statement('c', ['a', 'b'])]).then(
      ([quoted, ba, ab]) => {
        expect(quoted).toContain(`hashtext('["it''s",[]]')`)
        expect(ba).toBe(ab)
        expect(ba).toContain(`hashtext('["c",["a","b"]]')`)
      },
    )
  })

  it('Should poll as a fallback', async () => {
    const { watcher, drain, clients } = setup({ pollMs: 15 })
    await watcher.start()
    await sleep(100)
    expect(drain.mock.calls.length).toBeGreaterThanOrEqual(4)
    expect(clients[0]?.queries).toContain('SELECT 1')
  })

  it('Should report drain errors and carry on', async () => {
    const { watcher, drain, clients, errors } = setup()
    drain.mockRejectedValueOnce(new Error('db down'))
    await watcher.start()
    await watcher.idle()
    expect(errors).toEqual([[expect.objectContaining({ message: 'db down' }), 'drain']])
    clients[0]?.notify()
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(2)
  })

  it('Should reconnect after the connection is lost, LISTEN again and drain', async () => {
    const { watcher, clients, drain, errors } = setup({ failFirstConnects: 0 })
    await watcher.start()
    await watcher.idle()
    clients[0]?.emit('error', new Error('terminating connection due to administrator command'))
    clients[0]?.emit('end')
    expect(watcher.listening).toBe(false)
    expect(clients[0]?.ended).toBe(true)
    await vi.waitFor(() => expect(watcher.listening).toBe(true), { timeout: 2_000 })
    expect(clients).toHaveLength(2)
    expect(clients[1]?.queries).toEqual([
      expect.stringContaining('pg_try_advisory_lock'),
      'LISTEN "outbox_event"',
    ])
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(2)
    expect(errors.filter(([, w]) => w === 'listen')).toHaveLength(1)
    clients[1]?.notify()
    await watcher.idle()
    expect(drain).toHaveBeenCalledTimes(3)
  })

  it('Should keep retrying the reconnect with backoff', async () => {
    const { watcher, clients } = setup()
    await watcher.start()
    // the next 3 connects fail
    let failures = 3
    const original = clients[0] as FakeClient
    const proto = Object.getPrototypeOf(original) as FakeClient
    const connect = proto.connect
    proto.connect = async function (this: FakeClient) {
      if (this !== original && failures-- > 0) throw new Error('ECONNREFUSED')
    }
    try {
      original.emit('end')
      await vi.waitFor(() => expect(watcher.listening).toBe(true), { timeout: 3_000 })
      expect(clients.length).toBe(5)
    } finally {
      proto.connect = connect
    }
  })

  it('Should try the first connection again when the server cuts it between connect and LISTEN', async () => {
    const clients: FakeClient[] = []
    watcher = createWatcher({
      engine: { drain: async () => result() },
      createClient: () => {
        const c = new FakeClient()
        // What node-postgres says of a query on a client whose backend was just terminated.
        if (clients.length === 0)
          c.nextQueryError = 'Client has encountered a connection error and is not queryable'
        clients.push(c)
        return c
      },
      pollMs: 60_000,
      reconnectMinMs: 5,
    })
    await watcher.start()
    expect(clients).toHaveLength(2)
    expect(clients[0]?.ended).toBe(true)
    expect(watcher.listening).toBe(true)
  })

  it('Should reject start when the first connection fails, without scheduling anything', async () => {
    const { watcher, drain } = setup({ failFirstConnects: 1 })
    await expect(watcher.start()).rejects.toThrow(/ECONNREFUSED/)
    await sleep(30)
    expect(drain).not.toHaveBeenCalled()
  })

  it('Should stop: abort the drain signal, close the connection, ignore later events', async () => {
    const clients: FakeClient[] = []
    let signal: AbortSignal | undefined
    const drain = vi.fn(async (o?: { signal?: AbortSignal }) => {
      signal = o?.signal
      return result()
    })
    watcher = createWatcher({
      engine: { drain },
      createClient: () => {
        const c = new FakeClient()
        clients.push(c)
        return c
      },
      pollMs: 10,
      drain: { maxEvents: 7 },
    })
    await watcher.start()
    await watcher.idle()
    expect(drain).toHaveBeenCalledWith(expect.objectContaining({ maxEvents: 7 }))
    await watcher.stop()
    expect(signal?.aborted).toBe(true)
    expect(clients[0]?.ended).toBe(true)
    const calls = drain.mock.calls.length
    clients[0]?.notify()
    await sleep(40)
    expect(drain.mock.calls.length).toBe(calls)
  })
})
