/**
 * The relay's HTTP layer: web-standard APIs, hono and zod only (edge-friendly).
 * @module
 */
export type { RelayAppOptions, RelayEngine } from './app.js'
export { createRelayApp, DEFAULT_BODY_LIMIT_BYTES, DEFAULT_MAX_BUDGET_MS } from './app.js'
export type { AuthOptions } from './auth.js'
export {
  DEFAULT_TOLERANCE_SECONDS,
  MIN_SECRET_LENGTH,
  ReplayCache,
  SIGNATURE_HEADER,
  signWebhook,
} from './auth.js'
export type { ErrorBody, HttpErrorCode, RelayLogger } from './errors.js'
export type { MetricFamily, MetricSample, MetricsInput, RelayMetrics } from './metrics.js'
export { createRelayMetrics, renderFamilies } from './metrics.js'
export { relayOpenApiDocument } from './openapi.js'
export type {
  PromCollector,
  PromRegistryLike,
  PromSample,
  RegisterRelayMetricsOptions,
} from './prometheus.js'
export { registerRelayMetrics } from './prometheus.js'
