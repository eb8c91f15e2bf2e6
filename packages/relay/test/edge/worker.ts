/**
 * The relay as a Cloudflare Worker, built from the edge entry points only (`/core`, `/http`,
 * `/fetch`) and `pg` over `cloudflare:sockets`. `fetch` serves the relay's HTTP API (a cron or a
 * webhook calls `POST /drain`); `scheduled` drains on a Cron Trigger. A pool lives for one
 * invocation: workerd does not let a socket opened by one request serve another.
 */
import pg from 'pg'
import { createEngine, type Engine } from '../../src/core/index.js'
import { createRelayApp } from '../../src/http/index.js'
import { FetchPublisher } from '../../src/publishers/fetch.js'

export interface Env {
  DATABASE_URL: string
  KAFKA_REST_URL: string
  KAFKA_CLUSTER_ID: string
  RELAY_TOKEN: string
}

interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void
}

function relay(env: Env): { pool: pg.Pool; engine: Engine; publisher: FetchPublisher } {
  const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 2 })
  pool.on('error', () => {})
  const publisher = new FetchPublisher({ baseUrl: env.KAFKA_REST_URL, clusterId: env.KAFKA_CLUSTER_ID })
  const engine = createEngine({ pool, publisher, options: { batchSize: 50 } })
  return { pool, engine, publisher }
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const { pool, engine, publisher } = relay(env)
    try {
      const app = createRelayApp({
        engine,
        pool,
        auth: { token: env.RELAY_TOKEN },
        checkBroker: () => publisher.health(),
        maxBudgetMs: 25_000,
      })
      return await app.fetch(request)
    } finally {
      ctx.waitUntil(pool.end())
    }
  },

  async scheduled(_controller: unknown, env: Env, ctx: ExecutionContext): Promise<void> {
    const { pool, engine } = relay(env)
    try {
      await engine.drain({ budgetMs: 25_000 })
    } finally {
      ctx.waitUntil(pool.end())
    }
  },
}
