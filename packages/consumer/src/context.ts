/**
 * What every part of one inbox shares: its checked options, its statements and its counters.
 * @module
 */
import { InboxError } from './errors.js'
import { failedSql } from './failed.js'
import { type FailurePolicy, failurePolicy, type InboxCounters, type InboxHooks } from './failure.js'
import type { InboxOptions, InboxPrismaClient, InboxTransactionClient } from './inbox.js'
import { purgeBatchSql, quoteTable, recordSql } from './sql.js'

/** One inbox's state, made once by {@link inboxContext}. @internal */
export interface InboxContext<Tx extends InboxTransactionClient> {
  prisma: InboxPrismaClient<Tx>
  consumer: string
  /** The inbox table, quoted for SQL text. */
  table: string
  /** Interactive transaction timeout in ms for one event. */
  timeout: number
  policy: FailurePolicy
  hooks: InboxHooks
  recordFailed: boolean
  random?: () => number
  /** The statements of this table, built once. */
  statements: { record: string; purgeBatch: string; failed: ReturnType<typeof failedSql> }
  counts: InboxCounters
}

/**
 * Checks the options once, when the inbox is created.
 * @throws InboxError `INBOX_INVALID_OPTIONS` naming the option that is wrong
 */
export function inboxContext<Tx extends InboxTransactionClient>(
  prisma: InboxPrismaClient<Tx>,
  options: InboxOptions,
): InboxContext<Tx> {
  if (!options || typeof options.consumer !== 'string' || options.consumer.trim() === '') {
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      'options.consumer must name the consumer (a non-empty string)',
    )
  }
  const table = quoteTable(options.table ?? 'outbox_inbox')
  if (table === undefined) {
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      `options.table "${options.table}" must be a plain SQL identifier, or two joined by a dot (schema.table)`,
    )
  }
  const policy = failurePolicy(options.retry, options.deadLetter, options.random)
  if (options.recordFailed && options.deadLetter) {
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      'options.recordFailed and options.deadLetter exclude each other: give up to the inbox table or to a topic',
    )
  }
  return {
    prisma,
    consumer: options.consumer,
    table,
    timeout: options.timeoutMs ?? 15_000,
    policy,
    hooks: options.hooks ?? {},
    recordFailed: Boolean(options.recordFailed),
    random: options.random,
    statements: { record: recordSql(table), purgeBatch: purgeBatchSql(table), failed: failedSql(table) },
    counts: { processed: 0, duplicates: 0, retries: 0, deadLettered: 0, failed: 0, recordedFailed: 0 },
  }
}

/** Calls a hook, ignoring what it throws. */
export function safely(call: () => void): void {
  try {
    call()
  } catch {
    // hooks are for logs and metrics; they must not change what the inbox does
  }
}
