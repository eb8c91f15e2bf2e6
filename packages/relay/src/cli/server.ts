/**
 * The standalone Node server of the relay app, on `@hono/node-server`.
 * @module
 */
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'

/** A running server. */
export interface RelayServer {
  /** The bound port (useful with `port: 0`). */
  port: number
  /** `http://host:port`. */
  url: string
  /** Stops accepting connections and resolves when in-flight requests (drains) have finished. */
  close(): Promise<void>
}

/**
 * Serves a fetch handler (the Hono app of `createRelayApp`, or an app it is mounted in) over
 * HTTP on Node. Resolves once listening.
 *
 * @param app - anything with `fetch(request)`, e.g. a Hono app
 * @param [options.port=3000] - 0 picks a free port
 * @param [options.hostname='0.0.0.0']
 * @example
 * const server = await serveRelay(createRelayApp({ engine, pool, auth: { token } }), { port: 8080 })
 * process.on('SIGTERM', () => server.close())
 */
export function serveRelay(
  app: { fetch: (request: Request, ...rest: never[]) => Response | Promise<Response> },
  options: { port?: number; hostname?: string } = {},
): Promise<RelayServer> {
  const hostname = options.hostname ?? '0.0.0.0'
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch: app.fetch as (request: Request) => Response | Promise<Response>,
        port: options.port ?? 3000,
        hostname,
      },
      (info: AddressInfo) => {
        server.off('error', reject)
        const host = hostname === '0.0.0.0' || hostname === '::' ? '127.0.0.1' : hostname
        resolve({
          port: info.port,
          url: `http://${host.includes(':') ? `[${host}]` : host}:${info.port}`,
          close: () =>
            new Promise<void>((done, fail) => {
              server.close((error?: Error) => (error ? fail(error) : done()))
              // idle keep-alive sockets would otherwise hold close() open
              ;(server as { closeIdleConnections?: () => void }).closeIdleConnections?.()
            }),
        })
      },
    )
    server.once('error', reject)
  })
}
