/**
 * Decoding of the logical replication protocol: the CopyData frames of a walsender (XLogData,
 * keepalive) and the `pgoutput` messages inside XLogData (protocol version 1). Only what the
 * stream relay needs is decoded: Begin, Commit, Relation and Insert; other messages (Update,
 * Delete, Truncate, Origin, Type, Message) come back as `{ tag: 'other' }`.
 * @module
 */

/** A log sequence number as an unsigned 64-bit integer. */
export type Lsn = bigint

/** `0/16B3748`-style text of an LSN, as PostgreSQL prints it. */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}

/** Parses `0/16B3748`; throws on anything else. */
export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text)
  if (!match) throw new Error(`"${text}" is not an LSN (expected hex/hex, e.g. 0/16B3748)`)
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)
}

/** Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch. */
const PG_EPOCH_US = 946_684_800_000_000n

/** A frame the walsender sends inside CopyData. */
export type WalFrame =
  | { kind: 'xlog'; start: Lsn; walEnd: Lsn; body: Buffer }
  | { kind: 'keepalive'; walEnd: Lsn; replyRequested: boolean }

/** Decodes one CopyData chunk of a replication stream. */
export function decodeFrame(chunk: Buffer): WalFrame {
  const tag = chunk[0]
  if (tag === 0x77 /* w */) {
    if (chunk.length < 25) throw new Error(`XLogData frame too short (${chunk.length} bytes)`)
    return {
      kind: 'xlog',
      start: chunk.readBigUInt64BE(1),
      walEnd: chunk.readBigUInt64BE(9),
      body: chunk.subarray(25),
    }
  }
  if (tag === 0x6b /* k */) {
    if (chunk.length < 18) throw new Error(`keepalive frame too short (${chunk.length} bytes)`)
    return { kind: 'keepalive', walEnd: chunk.readBigUInt64BE(1), replyRequested: chunk[17] === 1 }
  }
  throw new Error(`unknown replication frame type 0x${(tag ?? 0).toString(16)}`)
}

/**
 * The Standby Status Update a client sends back: written, flushed and applied positions (all
 * the same here: the relay has nothing between "Kafka acked" and "done"), the clock, and whether
 * the server should answer at once.
 */
export function standbyStatus(lsn: Lsn, now: number = Date.now(), replyRequested = false): Buffer {
  const buffer = Buffer.alloc(34)
  buffer[0] = 0x72 // r
  buffer.writeBigUInt64BE(lsn, 1)
  buffer.writeBigUInt64BE(lsn, 9)
  buffer.writeBigUInt64BE(lsn, 17)
  buffer.writeBigInt64BE(BigInt(now) * 1000n - PG_EPOCH_US, 25)
  buffer[33] = replyRequested ? 1 : 0
  return buffer
}

export interface RelationColumn {
  name: string
  typeOid: number
}

/** A pgoutput message. Tuple values are text (pgoutput sends text unless `binary` is asked for). */
export type PgOutputMessage =
  | { tag: 'begin'; finalLsn: Lsn; xid: number }
  | { tag: 'commit'; commitLsn: Lsn; endLsn: Lsn }
  | { tag: 'relation'; relationId: number; schema: string; name: string; columns: RelationColumn[] }
  | { tag: 'insert'; relationId: number; values: Array<string | null> }
  | { tag: 'other'; type: string }

class Reader {
  offset = 0
  constructor(private readonly buffer: Buffer) {}
  u8(): number {
    const v = this.buffer.readUInt8(this.offset)
    this.offset += 1
    return v
  }
  i16(): number {
    const v = this.buffer.readInt16BE(this.offset)
    this.offset += 2
    return v
  }
  i32(): number {
    const v = this.buffer.readInt32BE(this.offset)
    this.offset += 4
    return v
  }
  u32(): number {
    const v = this.buffer.readUInt32BE(this.offset)
    this.offset += 4
    return v
  }
  u64(): bigint {
    const v = this.buffer.readBigUInt64BE(this.offset)
    this.offset += 8
    return v
  }
  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset)
    if (end < 0) throw new Error('unterminated string in pgoutput message')
    const v = this.buffer.toString('utf8', this.offset, end)
    this.offset = end + 1
    return v
  }
  text(length: number): string {
    if (this.offset + length > this.buffer.length) throw new Error('pgoutput value runs past the message')
    const v = this.buffer.toString('utf8', this.offset, this.offset + length)
    this.offset += length
    return v
  }
}

function readTuple(reader: Reader): Array<string | null> {
  const count = reader.i16()
  const values: Array<string | null> = []
  for (let i = 0; i < count; i++) {
    const kind = String.fromCharCode(reader.u8())
    if (kind === 'n') values.push(null)
    else if (kind === 't') values.push(reader.text(reader.i32()))
    else if (kind === 'u')
      values.push(null) // unchanged TOAST value: never in an INSERT
    else throw new Error(`unsupported tuple value kind "${kind}" (binary mode is not used)`)
  }
  return values
}

/**
 * Decodes the body of an XLogData frame.
 *
 * @example
 * decodePgOutput(frame.body) // { tag: 'insert', relationId: 16385, values: ['0190…', 'order', …] }
 */
export function decodePgOutput(body: Buffer): PgOutputMessage {
  const reader = new Reader(body)
  const type = String.fromCharCode(reader.u8())
  switch (type) {
    case 'B': {
      const finalLsn = reader.u64()
      reader.u64() // commit timestamp
      return { tag: 'begin', finalLsn, xid: reader.u32() }
    }
    case 'C': {
      reader.u8() // flags
      const commitLsn = reader.u64()
      const endLsn = reader.u64()
      return { tag: 'commit', commitLsn, endLsn }
    }
    case 'R': {
      const relationId = reader.u32()
      const schema = reader.cstring()
      const name = reader.cstring()
      reader.u8() // replica identity
      const count = reader.i16()
      const columns: RelationColumn[] = []
      for (let i = 0; i < count; i++) {
        reader.u8() // flags (part of the key)
        const columnName = reader.cstring()
        const typeOid = reader.u32()
        reader.i32() // type modifier
        columns.push({ name: columnName, typeOid })
      }
      return { tag: 'relation', relationId, schema, name, columns }
    }
    case 'I': {
      const relationId = reader.u32()
      const marker = String.fromCharCode(reader.u8())
      if (marker !== 'N') throw new Error(`insert message without a new tuple (marker "${marker}")`)
      return { tag: 'insert', relationId, values: readTuple(reader) }
    }
    default:
      return { tag: 'other', type }
  }
}
