import { zValidator } from '@hono/zod-validator'
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { z } from 'zod'
import type { DemoPrisma } from '../db.js'

const employeeInput = z.strictObject({
  email: z.email(),
  name: z.string().trim().min(1).max(200),
  title: z.string().trim().max(200).nullish(),
  department: z.string().trim().max(200).nullish(),
})
const idParam = z.object({ id: z.uuid() })

/** 400 with the field names when the body or a parameter is invalid. */
const invalid = (
  result: { success: true } | { success: false; error: { issues: readonly z.core.$ZodIssue[] } },
) => {
  if (result.success) return
  const problems = result.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
  throw new HTTPException(400, { message: `invalid input: ${problems.join('; ')}` })
}

/** The HR service: employees, each write publishing its event through the outbox. */
export function employeeRoutes(prisma: DemoPrisma) {
  return new Hono()
    .get('/', async (c) => c.json(await prisma.employee.findMany({ orderBy: { createdAt: 'asc' } })))
    .post('/', zValidator('json', employeeInput, invalid), async (c) => {
      const employee = await prisma.employee.create({ data: c.req.valid('json') })
      return c.json(employee, 201)
    })
    .patch(
      '/:id',
      zValidator('param', idParam, invalid),
      zValidator('json', employeeInput.partial(), invalid),
      async (c) => {
        const { id } = c.req.valid('param')
        const employee = await prisma.employee.update({ where: { id }, data: c.req.valid('json') })
        return c.json(employee)
      },
    )
    .delete('/:id', zValidator('param', idParam, invalid), async (c) => {
      const { id } = c.req.valid('param')
      await prisma.employee.delete({ where: { id } })
      return c.body(null, 204)
    })
}
