/**
 * Outbox rows as the stream relay decodes them from pgoutput: which columns it needs of a
 * relation, and one INSERT's values as a row.
 * @module
 */
import type { ClaimedRow } from '../core/sql/claim-batch.js'
import type { Lsn, PgOutputMessage } from './pgoutput.js'

/** One decoded outbox row and the transaction it belongs to. */
export interface StreamRow extends ClaimedRow {
  status: string
  /** The inserting transaction (xid8 as text). */
  txid: string
}

/** A committed transaction's outbox rows and the WAL position right after its commit. */
export interface Transaction {
  rows: StreamRow[]
  endLsn: Lsn
}

const REQUIRED_COLUMNS = [
  'id',
  'aggregatetype',
  'aggregateid',
  'type',
  'topic',
  'payload',
  'headers',
  'attempts',
  'seq',
  'status',
  'txid',
] as const
type Column = (typeof REQUIRED_COLUMNS)[number]

/** Where each column the relay needs sits in a relation's tuples. */
export type ColumnIndexes = Map<Column, number>

type RelationMessage = Extract<PgOutputMessage, { tag: 'relation' }>
type InsertMessage = Extract<PgOutputMessage, { tag: 'insert' }>

/** The tuple position of every required column; throws when the relation lacks one. */
export function outboxColumns(message: RelationMessage): ColumnIndexes {
  const indexes: ColumnIndexes = new Map()
  for (const name of REQUIRED_COLUMNS) {
    const index = message.columns.findIndex((c) => c.name === name)
    if (index < 0)
      throw new Error(
        `table ${message.schema}.${message.name} has no column "${name}": is it an outbox table?`,
      )
    indexes.set(name, index)
  }
  return indexes
}

/** The row an INSERT carries, its values read at `indexes`. */
export function decodeInsert(message: InsertMessage, indexes: ColumnIndexes): StreamRow {
  const value = (name: Column) => message.values[indexes.get(name) as number] ?? null
  const headers = value('headers')
  return {
    id: value('id') as string,
    aggregatetype: value('aggregatetype') as string,
    aggregateid: value('aggregateid') as string,
    type: value('type') as string,
    topic: value('topic') as string,
    payload: value('payload') as string,
    headers: headers === null ? null : (JSON.parse(headers) as Record<string, unknown>),
    attempts: Number(value('attempts') ?? 0),
    seq: value('seq') as string,
    status: value('status') as string,
    txid: value('txid') as string,
  }
}
