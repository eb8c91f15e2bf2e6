import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { DemoPrisma } from './db.js'
import { employeeRoutes } from './routes/employees.js'

/** Prisma errors the API turns into 4xx answers. */
const PRISMA_STATUS: Record<string, { status: 404 | 409; code: string; message: string }> = {
  P2025: { status: 404, code: 'not_found', message: 'no employee with this id' },
  P2002: { status: 409, code: 'conflict', message: 'an employee with this email already exists' },
}

/**
 * The demo API: the HR service (`/employees`), the directory service's projection
 * (`/directory`), and whatever else the caller mounts (the relay at `/outbox`).
 */
export function createDemoApp(prisma: DemoPrisma, mount: (app: Hono) => void = () => {}) {
  const app = new Hono()
  app.get('/', (c) =>
    c.json({
      employees: '/employees',
      directory: '/directory',
      relay: '/outbox',
    }),
  )
  app.route('/employees', employeeRoutes(prisma))
  app.get('/directory', async (c) =>
    c.json(await prisma.directoryEntry.findMany({ orderBy: { name: 'asc' } })),
  )
  mount(app)
  app.notFound((c) =>
    c.json({ error: { code: 'not_found', message: `no route ${c.req.method} ${c.req.path}` } }, 404),
  )
  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      const code = error.status === 400 ? 'bad_request' : 'http_error'
      return c.json({ error: { code, message: error.message } }, error.status)
    }
    const prismaCode = (error as { code?: unknown }).code
    const known = typeof prismaCode === 'string' ? PRISMA_STATUS[prismaCode] : undefined
    if (known) return c.json({ error: { code: known.code, message: known.message } }, known.status)
    console.error('demo: unexpected error', error)
    return c.json({ error: { code: 'internal', message: 'internal error' } }, 500)
  })
  return app
}
