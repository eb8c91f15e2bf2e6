/**
 * The Node side of the relay: configuration from the environment, the pg pool with timeouts
 * and keepalives, the HTTP server on `@hono/node-server`, and the `outbox-relay` CLI.
 * @module
 */
export type { Command, RelayConfig, RelayEnv } from './config.js'
export { ConfigError, loadConfig, USAGE } from './config.js'
export type { CliIO } from './main.js'
export { EXIT, run } from './main.js'
export type { DatabaseTimeouts, RelayConnectionOptions } from './pool.js'
export { createRelayPool, DEFAULT_DATABASE_TIMEOUTS, relayConnectionConfig } from './pool.js'
export type { RelayServer } from './server.js'
export { serveRelay } from './server.js'
