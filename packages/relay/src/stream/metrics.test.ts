import { describe, expect, it } from 'vitest'
import { streamMetricsText } from './metrics.js'
import type { StreamStats } from './streamer.js'

const stats: StreamStats = {
  role: 'standby',
  slot: 'outbox_relay',
  publication: 'outbox_relay',
  slotExists: true,
  slotActive: true,
  slotActivePid: 42,
  lagBytes: null,
  lagAlertBytes: 1024,
  lagAlert: false,
  health: 'ok',
  problems: [],
  walStatus: 'reserved',
  safeWalSizeBytes: null,
  maxSlotWalKeepSize: null,
  confirmedLsn: null,
  lastAckAt: '2024-01-01T00:00:01.500Z',
  lastPublishAt: null,
  published: 5,
  dead: 1,
  held: 2,
  skipped: 3,
  buffered: 7,
  lastError: null,
}

describe('stream metrics', () => {
  it('writes each known value with its help and type, and leaves out unknown ones', () => {
    const text = streamMetricsText(stats)
    expect(text).toContain(
      '# HELP outbox_stream_active 1 when this process streams from the slot, 0 when it stands by\n# TYPE outbox_stream_active gauge\noutbox_stream_active 0\n',
    )
    expect(text).toContain('# TYPE outbox_stream_published_total counter\noutbox_stream_published_total 5\n')
    expect(text).toContain('outbox_stream_last_ack_timestamp_seconds 1704067201.5\n')
    expect(text).not.toContain('outbox_stream_slot_lag_bytes')
    expect(text).not.toContain('outbox_stream_last_publish_timestamp_seconds')
    expect(text.endsWith('outbox_stream_skipped_total 3\n')).toBe(true)
  })
})
