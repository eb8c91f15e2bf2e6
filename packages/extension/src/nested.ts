import type { OutboxDatamodel } from './datamodel.js'
import { OutboxError } from './errors.js'

/** Nested operations that write rows of the related model itself. */
const WRITES_RELATED = new Set([
  'create',
  'createMany',
  'connectOrCreate',
  'upsert',
  'update',
  'updateMany',
  'delete',
  'deleteMany',
])
/** Nested operations that only move a foreign key (a write on whichever side holds it). */
const MOVES_KEY = new Set(['connect', 'disconnect', 'set'])

/**
 * Prisma does not run query extensions for nested writes, so their records would get no outbox
 * row. Rather than miss them silently, reject any nested write that changes a row of a captured
 * model, naming the path.
 * @throws OutboxError `OUTBOX_UNSUPPORTED_WRITE`
 */
export function assertNoCapturedNestedWrites(
  datamodel: OutboxDatamodel,
  captured: ReadonlySet<string>,
  model: string,
  data: unknown,
  path: string,
): void {
  if (!data || typeof data !== 'object') return
  if (Array.isArray(data)) {
    for (const [i, item] of data.entries()) {
      assertNoCapturedNestedWrites(datamodel, captured, model, item, `${path}[${i}]`)
    }
    return
  }
  const relations = datamodel.models[model]?.relations ?? {}
  for (const [field, value] of Object.entries(data as Record<string, unknown>)) {
    const relation = relations[field]
    if (!relation || !value || typeof value !== 'object') continue
    for (const [op, opArgs] of Object.entries(value as Record<string, unknown>)) {
      const where = `${path}.${field}.${op}`
      const changesRelated = WRITES_RELATED.has(op) || (MOVES_KEY.has(op) && !relation.holdsForeignKey)
      if (changesRelated && captured.has(relation.model)) {
        throw new OutboxError(
          'OUTBOX_UNSUPPORTED_WRITE',
          `${where}: this nested write changes ${relation.model} records, which the outbox captures, but Prisma does not report nested writes to extensions. Write the ${relation.model} records with their own call (in the same $transaction) so each gets its event.`,
        )
      }
      // Look deeper: a nested create/update may itself nest writes into captured models.
      for (const nested of nestedDataOf(op, opArgs)) {
        assertNoCapturedNestedWrites(datamodel, captured, relation.model, nested, where)
      }
    }
  }
}

function nestedDataOf(op: string, args: unknown): unknown[] {
  if (!args || typeof args !== 'object') return []
  const list = Array.isArray(args) ? args : [args]
  const out: unknown[] = []
  for (const item of list) {
    const a = item as Record<string, unknown>
    if (op === 'create') out.push(a)
    else if (op === 'connectOrCreate' || op === 'upsert') out.push(a.create, a.update)
    else if (op === 'update' || op === 'updateMany') out.push('data' in a ? a.data : a)
    else if (op === 'createMany') out.push(a.data)
  }
  return out
}
