/**
 * Everything public, for Node: the engine, the HTTP app, both publishers, the stream relay
 * and the CLI's pieces.
 * On an edge runtime import the subpaths instead (`/core`, `/http`, `/fetch`): this entry loads
 * kafkajs, pg and `@hono/node-server`.
 * @module
 */
export type {
  CliIO,
  Command,
  DatabaseTimeouts,
  RelayConfig,
  RelayConnectionOptions,
  RelayEnv,
  RelayServer,
} from './cli/index.js'
export {
  ConfigError,
  createRelayPool,
  DEFAULT_DATABASE_TIMEOUTS,
  EXIT,
  loadConfig,
  relayConnectionConfig,
  run,
  serveRelay,
  USAGE,
} from './cli/index.js'
export type {
  BatchInfo,
  CreateEngineArgs,
  DeadLetterPolicy,
  DrainOptions,
  DrainResult,
  Engine,
  EngineCounters,
  EngineHooks,
  EngineOptions,
  JsonLoggerOptions,
  ListenClient,
  LogFn,
  Logger,
  LogLevel,
  OutboxMessage,
  OutboxStats,
  PoolClientLike,
  PoolLike,
  Publisher,
  PublishFailureKind,
  PublishOptions,
  PurgeOptions,
  PurgeResult,
  Queryable,
  QueryResult,
  QueryResultLike,
  RelayErrorCode,
  Retention,
  RetentionOptions,
  RetentionPolicy,
  SqlStatement,
  TopicStats,
  WaitingRow,
  WakeReason,
  Watcher,
  WatcherOptions,
} from './core/index.js'
export {
  CLAIM_LOCK_KEY,
  childLogger,
  classifyPublishError,
  classifyPublishFailure,
  coerceError,
  combineHooks,
  createEngine,
  createJsonLogger,
  createRetention,
  createWatcher,
  DEFAULT_RETENTION,
  DEFAULT_TABLE,
  engineLogHooks,
  isRelayError,
  LOG_LEVELS,
  MAX_ERROR_LENGTH,
  PURGE_LOCK_KEY,
  purgeOutbox,
  RelayError,
  WATCH_LEAD_LOCK_KEY,
} from './core/index.js'
export type {
  AuthOptions,
  ErrorBody,
  HttpErrorCode,
  MetricFamily,
  MetricSample,
  MetricsInput,
  PromCollector,
  PromRegistryLike,
  PromSample,
  RegisterRelayMetricsOptions,
  RelayAppOptions,
  RelayEngine,
  RelayLogger,
  RelayMetrics,
} from './http/index.js'
export {
  createRelayApp,
  createRelayMetrics,
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_MAX_BUDGET_MS,
  DEFAULT_TOLERANCE_SECONDS,
  MIN_SECRET_LENGTH,
  ReplayCache,
  registerRelayMetrics,
  relayOpenApiDocument,
  renderFamilies,
  SIGNATURE_HEADER,
  signWebhook,
} from './http/index.js'
export type { FetchPublisherOptions } from './publishers/fetch.js'
export { FetchPublisher } from './publishers/fetch.js'
export type { KafkaHealthCheck, KafkaPublisherOptions } from './publishers/kafkajs.js'
export {
  KafkaPublisher,
  kafkaEntryLevel,
  kafkaHealthCheck,
  kafkaLogCreator,
  quietKafkajsIdleLoop,
} from './publishers/kafkajs.js'
export type { StreamBatchInfo, Streamer, StreamerOptions, StreamerRole, StreamStats } from './stream/index.js'
export {
  createStreamer,
  DEFAULT_STREAM_SLOT,
  dropStreamSetup,
  ensureStreamSetup,
  isSlotInUse,
  serveStreamStats,
  streamMetricsText,
} from './stream/index.js'
