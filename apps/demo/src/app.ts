import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { DemoPrisma } from './db.js'
import { employeeRoutes } from './routes/employees.js'
import { type TracedRequest, traceRequests } from './tracing.js'

/** Prisma errors the API turns into 4xx answers (codes in the relay's style: UPPER_SNAKE_CASE). */
const PRISMA_STATUS: Record<string, { status: 404 | 409; code: string; message: string }> = {
  P2025: { status: 404, code: 'NOT_FOUND', message: 'no employee with this id' },
  P2002: { status: 409, code: 'CONFLICT', message: 'an employee with this email already exists' },
}

/** The relay endpoints mounted at `/outbox`, listed by `GET /outbox`. */
const RELAY_ENDPOINTS = {
  drain: 'POST /outbox/drain',
  stats: 'GET /outbox/stats',
  health: 'GET /outbox/health',
  metrics: 'GET /outbox/metrics',
  dead: 'GET /outbox/dead',
  retryDead: 'POST /outbox/dead/retry',
  openapi: 'GET /outbox/openapi.json',
  auth: 'Authorization: Bearer <RELAY_TOKEN> on all but /outbox/health',
}

/**
 * The demo API: the HR service (`/employees`), the directory service's projection
 * (`/directory`), and whatever else the caller mounts (the relay at `/outbox`). Each request runs
 * in a server span; `onRequest` gets its trace id.
 */
export function createDemoApp(
  prisma: DemoPrisma,
  mount: (app: Hono) => void = () => {},
  onRequest?: (request: TracedRequest) => void,
) {
  const app = new Hono()
  app.use(traceRequests(onRequest))
  app.get('/', (c) =>
    c.json({
      employees: '/employees',
      directory: '/directory',
      relay: '/outbox',
    }),
  )
  app.route('/employees', employeeRoutes(prisma))
  app.get('/outbox', (c) => c.json(RELAY_ENDPOINTS))
  app.get('/directory', async (c) =>
    c.json(await prisma.directoryEntry.findMany({ orderBy: { name: 'asc' } })),
  )
  mount(app)
  app.notFound((c) =>
    c.json({ error: { code: 'NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` } }, 404),
  )
  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      // The validator's own 400 is a body that is not JSON; invalid fields answer from the routes.
      const code = error.status === 400 ? 'INVALID_JSON' : 'HTTP_ERROR'
      return c.json({ error: { code, message: error.message } }, error.status)
    }
    const prismaCode = (error as { code?: unknown }).code
    const known = typeof prismaCode === 'string' ? PRISMA_STATUS[prismaCode] : undefined
    if (known) return c.json({ error: { code: known.code, message: known.message } }, known.status)
    console.error('demo: unexpected error', error)
    return c.json({ error: { code: 'INTERNAL', message: 'internal error' } }, 500)
  })
  return app
}
