/**
 * The dead-letter routes: `GET /dead` (a page), `GET /dead/:id`, `POST /dead/retry`,
 * `POST /dead/discard`. Each database call answers 503 past `databaseTimeoutMs`.
 * @module
 */
import type { Context, Hono } from 'hono'
import { databaseCall } from '../core/db.js'
import { actOnDead, type DeadSelection, deadLetter, deadLetterPage } from '../core/dead-letters.js'
import { readBody } from './body.js'
import { HttpError } from './errors.js'
import {
  type DeadSelectionBody,
  deadIdSchema,
  deadQuerySchema,
  deadSelectionSchema,
  describeIssues,
} from './schemas.js'
import type { AppSettings } from './settings.js'

function selection(body: DeadSelectionBody): DeadSelection {
  if (body.ids) return { ids: body.ids }
  if (body.topics) return { topics: body.topics }
  return { all: true }
}

function listDead({ pool, table, databaseTimeoutMs }: AppSettings) {
  return async (c: Context): Promise<Response> => {
    // `?cursor=` (empty) means no cursor, as if absent
    const params = Object.fromEntries(Object.entries(c.req.query()).filter(([, v]) => v !== ''))
    const query = deadQuerySchema.safeParse(params)
    if (!query.success)
      throw new HttpError(400, 'INVALID_QUERY', `invalid query: ${describeIssues(query.error)}`)
    const { limit, maxBytes, payload, cursor, topic } = query.data
    const page = await databaseCall(
      'list dead',
      () =>
        deadLetterPage(pool, {
          table,
          limit,
          maxBytes,
          withPayload: payload,
          cursor,
          topics: topic ? [topic] : undefined,
        }),
      databaseTimeoutMs,
    )
    return c.json(page)
  }
}

function getDead({ pool, table, databaseTimeoutMs }: AppSettings) {
  return async (c: Context): Promise<Response> => {
    const id = deadIdSchema.safeParse(c.req.param('id'))
    if (!id.success) throw new HttpError(400, 'INVALID_QUERY', 'invalid id: must be a UUID')
    const event = await databaseCall(
      'get dead',
      () => deadLetter(pool, { table, id: id.data }),
      databaseTimeoutMs,
    )
    if (!event) throw new HttpError(404, 'NOT_FOUND', `no dead row with id ${id.data}`)
    return c.json(event)
  }
}

function actOnDeadHandler({ pool, table, databaseTimeoutMs }: AppSettings, action: 'retry' | 'discard') {
  return async (c: Context): Promise<Response> => {
    const body = await readBody(c, deadSelectionSchema, false)
    const n = await databaseCall(
      `${action} dead`,
      () => actOnDead(pool, { table, action, selection: selection(body), lockTimeoutMs: databaseTimeoutMs }),
      databaseTimeoutMs,
    )
    return c.json(action === 'retry' ? { retried: n } : { discarded: n })
  }
}

/** Adds the dead-letter routes to `app` (behind whatever middleware it already has). */
export function addDeadLetterRoutes(app: Hono, s: AppSettings): void {
  app.get('/dead', listDead(s))
  app.get('/dead/:id', getDead(s))
  for (const action of ['retry', 'discard'] as const) app.post(`/dead/${action}`, actOnDeadHandler(s, action))
}
