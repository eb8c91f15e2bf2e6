/**
 * The stream relay: logical replication (pgoutput) from a publication on the outbox table to
 * Kafka. Node only (the replication protocol needs a TCP socket).
 * @module
 */

export { serveStreamStats, streamMetricsText } from './metrics.js'
export { isSlotInUse } from './replication.js'
export type { StreamBatchInfo, Streamer, StreamerOptions, StreamerRole, StreamStats } from './streamer.js'
export { createStreamer, DEFAULT_STREAM_SLOT, dropStreamSetup, ensureStreamSetup } from './streamer.js'
