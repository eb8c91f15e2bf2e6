import { zValidator } from '@hono/zod-validator'
import { type Context, Hono } from 'hono'
import { z } from 'zod'
import type { DemoPrisma } from '../db.js'

const employeeInput = z.strictObject({
  email: z.email(),
  name: z.string().trim().min(1).max(200),
  title: z.string().trim().max(200).nullish(),
  department: z.string().trim().max(200).nullish(),
})
const idParam = z.object({ id: z.uuid() })

/** 400 with the field names when the body (`INVALID_BODY`) or a parameter (`INVALID_PARAM`) is invalid. */
const invalid =
  (code: 'INVALID_BODY' | 'INVALID_PARAM') =>
  (
    result: { success: true } | { success: false; error: { issues: readonly z.core.$ZodIssue[] } },
    c: Context,
  ) => {
    if (result.success) return
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
    return c.json({ error: { code, message: `invalid input: ${problems.join('; ')}` } }, 400)
  }

/** The HR service: employees, each write publishing its event through the outbox. */
export function employeeRoutes(prisma: DemoPrisma) {
  return new Hono()
    .get('/', async (c) => c.json(await prisma.employee.findMany({ orderBy: { createdAt: 'asc' } })))
    .post('/', zValidator('json', employeeInput, invalid('INVALID_BODY')), async (c) => {
      const employee = await prisma.employee.create({ data: c.req.valid('json') })
      return c.json(employee, 201)
    })
    .patch(
      '/:id',
      zValidator('param', idParam, invalid('INVALID_PARAM')),
      zValidator('json', employeeInput.partial(), invalid('INVALID_BODY')),
      async (c) => {
        const { id } = c.req.valid('param')
        const employee = await prisma.employee.update({ where: { id }, data: c.req.valid('json') })
        return c.json(employee)
      },
    )
    .delete('/:id', zValidator('param', idParam, invalid('INVALID_PARAM')), async (c) => {
      const { id } = c.req.valid('param')
      await prisma.employee.delete({ where: { id } })
      return c.body(null, 204)
    })
}
