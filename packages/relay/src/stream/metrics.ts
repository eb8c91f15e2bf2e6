/**
 * The stream relay's health as Prometheus text and as a tiny read-only HTTP endpoint.
 * @module
 */
import { createServer, type Server } from 'node:http'
import type { StreamStats } from './streamer.js'

function gauge(lines: string[], name: string, help: string, value: number | null, type = 'gauge'): void {
  if (value === null || !Number.isFinite(value)) return
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`)
}

/**
 * Prometheus exposition of {@link StreamStats}: slot lag, the alert flag, health, the role, the WAL
 * the server may still keep for the slot, last acknowledgement and counters.
 *
 * @example
 * streamMetricsText(await streamer.stats())
 */
export function streamMetricsText(stats: StreamStats): string {
  const lines: string[] = []
  gauge(
    lines,
    'outbox_stream_active',
    '1 when this process streams from the slot, 0 when it stands by',
    stats.role === 'active' ? 1 : 0,
  )
  gauge(
    lines,
    'outbox_stream_slot_active',
    '1 when some connection streams from the slot',
    stats.slotActive ? 1 : 0,
  )
  gauge(
    lines,
    'outbox_stream_slot_lag_bytes',
    'pg_current_wal_lsn() - confirmed_flush_lsn of the slot',
    stats.lagBytes,
  )
  gauge(
    lines,
    'outbox_stream_slot_lag_alert_bytes',
    'slot lag above which outbox_stream_slot_lag_alert is 1',
    stats.lagAlertBytes,
  )
  gauge(
    lines,
    'outbox_stream_slot_lag_alert',
    '1 when the slot lag is above the alert threshold or the slot lost WAL',
    stats.lagAlert ? 1 : 0,
  )
  gauge(
    lines,
    'outbox_stream_healthy',
    '0 when the slot lag is above the limit, the slot risks or lost WAL, or it does not exist (see problems in /stats)',
    stats.health === 'ok' ? 1 : 0,
  )
  gauge(
    lines,
    'outbox_stream_slot_safe_wal_size_bytes',
    'WAL the slot may still fall behind before max_slot_wal_keep_size invalidates it',
    stats.safeWalSizeBytes,
  )
  gauge(
    lines,
    'outbox_stream_last_ack_timestamp_seconds',
    'when Kafka last acknowledged a batch',
    stats.lastAckAt === null ? null : Date.parse(stats.lastAckAt) / 1000,
  )
  gauge(
    lines,
    'outbox_stream_last_publish_timestamp_seconds',
    'when this process last handed a batch to the publisher',
    stats.lastPublishAt === null ? null : Date.parse(stats.lastPublishAt) / 1000,
  )
  gauge(lines, 'outbox_stream_buffered_events', 'events decoded and not yet settled', stats.buffered)
  gauge(
    lines,
    'outbox_stream_published_total',
    'events published by this process',
    stats.published,
    'counter',
  )
  gauge(
    lines,
    'outbox_stream_dead_total',
    'events this process sent to the dead letters',
    stats.dead,
    'counter',
  )
  gauge(
    lines,
    'outbox_stream_held_total',
    'events held back behind a dead event of their key',
    stats.held,
    'counter',
  )
  gauge(
    lines,
    'outbox_stream_skipped_total',
    'events decoded again that were already finished',
    stats.skipped,
    'counter',
  )
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
