import { describe, expect, it } from 'vitest'
import { decodeFrame, decodePgOutput, formatLsn, parseLsn, standbyStatus } from './pgoutput.js'

describe('pgoutput decoding', () => {
  it('round-trips LSN text and rejects other text', () => {
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848')
    expect(parseLsn('0/10')).toBe(16n)
    expect(() => parseLsn('16-B3')).toThrow(/not an LSN/)
  })

  it('encodes a standby status update with the position three times and the reply flag', () => {
    const buffer = standbyStatus(0x1_0000_0020n, Date.UTC(2000, 0, 1) + 1, true)
    expect(buffer[0]).toBe(0x72)
    expect(buffer.readBigUInt64BE(1)).toBe(0x1_0000_0020n)
    expect(buffer.readBigUInt64BE(9)).toBe(0x1_0000_0020n)
    expect(buffer.readBigUInt64BE(17)).toBe(0x1_0000_0020n)
    expect(buffer.readBigInt64BE(25)).toBe(1000n)
    expect(buffer[33]).toBe(1)
  })

  it('decodes keepalives and inserts, and names what it cannot decode', () => {
    const keepalive = Buffer.alloc(18)
    keepalive[0] = 0x6b
    keepalive.writeBigUInt64BE(42n, 1)
    keepalive[17] = 1
    expect(decodeFrame(keepalive)).toEqual({ kind: 'keepalive', walEnd: 42n, replyRequested: true })
    expect(() => decodeFrame(Buffer.from([0x7a]))).toThrow(/unknown replication frame type 0x7a/)
    const value = Buffer.from('héllo')
    const insert = Buffer.concat([
      Buffer.from('I'),
      Buffer.from([0, 0, 0, 7]),
      Buffer.from('N'),
      Buffer.from([0, 2]),
      Buffer.from('t'),
      Buffer.from([0, 0, 0, value.length]),
      value,
      Buffer.from('n'),
    ])
    expect(decodePgOutput(insert)).toEqual({ tag: 'insert', relationId: 7, values: ['héllo', null] })
    expect(decodePgOutput(Buffer.from('Y'))).toEqual({ tag: 'other', type: 'Y' })
    expect(() => decodePgOutput(Buffer.concat([insert.subarray(0, 9), Buffer.from([0, 0, 0, 99])]))).toThrow(
      /runs past the message/,
    )
  })
})
