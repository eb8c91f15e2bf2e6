import { OutboxError } from './errors.js'

/**
 * Turns a Prisma record into plain JSON, predictably: BigInt and Decimal become strings (no
 * precision lost), Date becomes an ISO-8601 string, Bytes become base64, Json stays as it is.
 *
 * @throws OutboxError `OUTBOX_UNSERIALISABLE_PAYLOAD` for values JSON cannot hold (functions,
 *   symbols, cycles, non-finite numbers), naming the path
 */
export function toJsonSafe(value: unknown, path = '$', seen = new Set<object>()): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw unserialisable(path, `non-finite number ${value}`)
    return value
  }
  if (typeof value === 'bigint') return value.toString()
  if (value === undefined) return undefined
  if (typeof value !== 'object') throw unserialisable(path, `a ${typeof value}`)
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw unserialisable(path, 'an invalid Date')
    return value.toISOString()
  }
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')
  if (isDecimal(value)) return value.toFixed()
  if (seen.has(value)) throw unserialisable(path, 'a circular reference')
  seen.add(value)
  try {
    if (Array.isArray(value)) return value.map((v, i) => toJsonSafe(v, `${path}[${i}]`, seen) ?? null)
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      const safe = toJsonSafe(v, `${path}.${k}`, seen)
      if (safe !== undefined) out[k] = safe
    }
    return out
  } finally {
    seen.delete(value)
  }
}

/** Prisma's Decimal (decimal.js): recognised by shape, so no runtime import is needed. */
function isDecimal(value: object): value is { toFixed(): string } {
  return (
    typeof (value as { toFixed?: unknown }).toFixed === 'function' &&
    typeof (value as { isFinite?: unknown }).isFinite === 'function' &&
    'd' in value &&
    'e' in value &&
    's' in value
  )
}

function unserialisable(path: string, what: string): OutboxError {
  return new OutboxError(
    'OUTBOX_UNSERIALISABLE_PAYLOAD',
    `event payload is not serialisable: ${path} is ${what}`,
  )
}
