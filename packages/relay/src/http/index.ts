/**
 * The relay's HTTP layer: web-standard APIs, hono and zod only (edge-friendly).
 * @module
 */
export * from './app.js'
export * from './auth.js'
export * from './errors.js'
export * from './metrics.js'
export * from './openapi.js'
export * from './schemas.js'
