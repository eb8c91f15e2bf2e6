/**
 * The relay's engine, without a Kafka client or Node built-ins: claim → publish → mark over any
 * pg-compatible pool and any {@link Publisher}. Runs wherever `fetch`, `crypto` and timers do.
 * @module
 */
export type { PoolClientLike, PoolLike, Queryable, QueryResult, QueryResultLike, SqlStatement } from './db.js'
export type {
  BatchInfo,
  CreateEngineArgs,
  DrainResult,
  Engine,
  EngineCounters,
  EngineHooks,
  OutboxStats,
  TopicStats,
  WaitingRow,
} from './engine.js'
export { createEngine } from './engine.js'
export type { RelayErrorCode } from './errors.js'
export { coerceError, isRelayError, MAX_ERROR_LENGTH, RelayError } from './errors.js'
export { combineHooks } from './hooks.js'
export type { JsonLoggerOptions, LogFn, Logger, LogLevel } from './log.js'
export { childLogger, createJsonLogger, engineLogHooks, LOG_LEVELS } from './log.js'
export type { OutboxMessage } from './message.js'
export type { DeadLetterPolicy, DrainOptions, EngineOptions, PublishedRows } from './options.js'
export type { Publisher, PublishFailureKind, PublishOptions } from './publisher.js'
export { classifyPublishError, classifyPublishFailure } from './publisher.js'
export type { PurgeOptions, PurgeResult, Retention, RetentionOptions, RetentionPolicy } from './retention.js'
export { createRetention, DEFAULT_RETENTION, purgeOutbox } from './retention.js'
export { CLAIM_LOCK_KEY, PURGE_LOCK_KEY } from './sql/lock.js'
export { DEFAULT_TABLE } from './sql/table.js'
export type { ListenClient, WakeReason, Watcher, WatcherOptions } from './watch.js'
export { createWatcher, WATCH_LEAD_LOCK_KEY } from './watch.js'
