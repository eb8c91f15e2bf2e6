/**
 * Request bodies of the relay's HTTP app: JSON, validated with the zod schemas of `schemas.ts`.
 * @module
 */
import type { Context } from 'hono'
import type { z } from 'zod'
import { HttpError } from './errors.js'
import { describeIssues } from './schemas.js'

/** Reads a JSON body (empty = `{}` when `optional`) and validates it; 400 naming the field. */
export async function readBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  optional: boolean,
): Promise<z.output<S>> {
  const text = await c.req.text()
  let input: unknown = {}
  if (text.trim() !== '') {
    try {
      input = JSON.parse(text)
    } catch {
      throw new HttpError(400, 'INVALID_JSON', 'malformed JSON in request body')
    }
  } else if (!optional) throw new HttpError(400, 'INVALID_BODY', 'a JSON body is required')
  const result = schema.safeParse(input)
  if (!result.success)
    throw new HttpError(400, 'INVALID_BODY', `invalid body: ${describeIssues(result.error)}`)
  return result.data
}
