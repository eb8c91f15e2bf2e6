/**
 * The stream relay's health as Prometheus text and as a tiny read-only HTTP endpoint.
 * @module
 */
import { createServer, type Server } from 'node:http'
import type { StreamStats } from './streamer.js'

/** One metric of {@link streamMetricsText}; a null (or non-finite) value leaves it out. */
interface StreamMetric {
  name: string
  help: string
  type?: 'gauge' | 'counter'
  value: (stats: StreamStats) => number | null
}

const seconds = (iso: string | null) => (iso === null ? null : Date.parse(iso) / 1000)

const counter = (
  name: string,
  help: string,
  key: 'published' | 'dead' | 'held' | 'skipped',
): StreamMetric => ({
  name,
  help,
  type: 'counter',
  value: (s) => s[key],
})

/** The metrics in the order they are written. */
const STREAM_METRICS: StreamMetric[] = [
  {
    name: 'outbox_stream_active',
    help: '1 when this process streams from the slot, 0 when it stands by',
    value: (s) => (s.role === 'active' ? 1 : 0),
  },
  {
    name: 'outbox_stream_slot_active',
    help: '1 when some connection streams from the slot',
    value: (s) => (s.slotActive ? 1 : 0),
  },
  {
    name: 'outbox_stream_slot_lag_bytes',
    help: 'pg_current_wal_lsn() - confirmed_flush_lsn of the slot',
    value: (s) => s.lagBytes,
  },
  {
    name: 'outbox_stream_slot_lag_alert_bytes',
    help: 'slot lag above which outbox_stream_slot_lag_alert is 1',
    value: (s) => s.lagAlertBytes,
  },
  {
    name: 'outbox_stream_slot_lag_alert',
    help: '1 when the slot lag is above the alert threshold or the slot lost WAL',
    value: (s) => (s.lagAlert ? 1 : 0),
  },
  {
    name: 'outbox_stream_healthy',
    help: '0 when the slot lag is above the limit, the slot risks or lost WAL, or it does not exist (see problems in /stats)',
    value: (s) => (s.health === 'ok' ? 1 : 0),
  },
  {
    name: 'outbox_stream_slot_safe_wal_size_bytes',
    help: 'WAL the slot may still fall behind before max_slot_wal_keep_size invalidates it',
    value: (s) => s.safeWalSizeBytes,
  },
  {
    name: 'outbox_stream_last_ack_timestamp_seconds',
    help: 'when Kafka last acknowledged a batch',
    value: (s) => seconds(s.lastAckAt),
  },
  {
    name: 'outbox_stream_last_publish_timestamp_seconds',
    help: 'when this process last handed a batch to the publisher',
    value: (s) => seconds(s.lastPublishAt),
  },
  {
    name: 'outbox_stream_buffered_events',
    help: 'events decoded and not yet settled',
    value: (s) => s.buffered,
  },
  counter('outbox_stream_published_total', 'events published by this process', 'published'),
  counter('outbox_stream_dead_total', 'events this process sent to the dead letters', 'dead'),
  counter('outbox_stream_held_total', 'events held back behind a dead event of their key', 'held'),
  counter('outbox_stream_skipped_total', 'events decoded again that were already finished', 'skipped'),
]

/**
 * Prometheus exposition of {@link StreamStats}: slot lag, the alert flag, health, the role, the WAL
 * the server may still keep for the slot, last acknowledgement and counters.
 *
 * @example
 * streamMetricsText(await streamer.stats())
 */
export function streamMetricsText(stats: StreamStats): string {
  const lines: string[] = []
  for (const { name, help, type = 'gauge', value } of STREAM_METRICS) {
    const v = value(stats)
    if (v === null || !Number.isFinite(v)) continue
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${v}`)
  }
  return `${lines.join('\n')}\n`
}

/**
 * Serves `GET /stats` (JSON) and `GET /metrics` (Prometheus text) of a streamer. Read-only, no
 * authentication: bind it to loopback or a private network.
 */
export function serveStreamStats(
  stats: () => Promise<StreamStats>,
  options: { port: number; host: string },
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    if (request.method !== 'GET' || (path !== '/stats' && path !== '/metrics')) {
      response
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"error":"not found: GET /stats or /metrics"}')
      return
    }
    stats().then(
      (s) => {
        if (path === '/stats')
          response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(s))
        else
          response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(streamMetricsText(s))
      },
      (error: Error) =>
        response
          .writeHead(503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: error.message })),
    )
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : options.port
      resolve({
        server,
        url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      })
    })
  })
}
