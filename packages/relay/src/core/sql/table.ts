/**
 * Safe quoting of the (configurable) outbox table name, and the topic filter of statements.
 * @module
 */

/** The table the Prisma model `OutboxEvent` maps to. */
export const DEFAULT_TABLE = 'outbox_event'

/**
 * Quotes a table name for SQL text: `outbox_event` → `"outbox_event"`, `app.outbox` →
 * `"app"."outbox"`. Each dot-separated part is a double-quoted identifier with embedded quotes
 * doubled, so no name can break out of the identifier. Names are case-sensitive, as in Prisma's
 * generated DDL.
 *
 * @param name - `table` or `schema.table`
 * @throws Error when a part is empty or contains a NUL byte
 * @example
 * quoteTable('outbox_event') // '"outbox_event"'
 */
export function quoteTable(name: string): string {
  const parts = name.split('.')
  if (parts.length > 2) throw new Error(`table name "${name}" has more than one dot (use schema.table)`)
  return parts
    .map((part) => {
      if (part.length === 0 || part.includes('\0'))
        throw new Error(`table name "${name}" has an empty or invalid part`)
      return `"${part.replaceAll('"', '""')}"`
    })
    .join('.')
}

/**
 * A topic filter as an SQL parameter: the topics, or null for every topic (none given, or an
 * empty list). Statements test it as `$n::text[] IS NULL OR topic = ANY($n::text[])`.
 */
export function topicFilter(topics: string[] | undefined): string[] | null {
  return topics && topics.length > 0 ? topics : null
}
