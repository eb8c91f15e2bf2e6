import { OutboxError } from '../errors.js'

/** What a `/// @outbox(...)` annotation says. */
export interface OutboxAnnotation {
  aggregateType?: string
  topic?: string
}

const ANNOTATION = /^\s*@outbox\b(?:\s*\((.*)\))?\s*$/
const ARGUMENT = /^\s*(\w+)\s*:\s*"((?:[^"\\]|\\.)*)"\s*$/
const KNOWN = new Set(['aggregateType', 'topic'])

/**
 * Reads the `@outbox` annotation out of a model's `///` documentation.
 * `/// @outbox` or `/// @outbox(aggregateType: "employee", topic: "hr.employees")`.
 *
 * @returns the annotation, or undefined when the model has none
 * @throws OutboxError naming the model when the annotation is malformed
 */
export function parseOutboxAnnotation(
  model: string,
  documentation: string | undefined,
): OutboxAnnotation | undefined {
  if (!documentation) return undefined
  const lines = documentation.split('\n').filter((line) => /^\s*@outbox\b/.test(line))
  if (lines.length === 0) return undefined
  if (lines.length > 1) throw invalid(model, 'it has more than one @outbox annotation')
  const match = ANNOTATION.exec(lines[0] as string)
  if (!match)
    throw invalid(
      model,
      `cannot read "${(lines[0] as string).trim()}"; expected @outbox or @outbox(aggregateType: "...", topic: "...")`,
    )
  const annotation: OutboxAnnotation = {}
  const body = match[1]?.trim()
  if (!body) return annotation
  for (const part of body.split(',')) {
    const arg = ARGUMENT.exec(part)
    if (!arg) throw invalid(model, `cannot read the argument "${part.trim()}"; write name: "value"`)
    const [, name, value] = arg as unknown as [string, string, string]
    if (!KNOWN.has(name)) throw invalid(model, `unknown argument "${name}" (known: aggregateType, topic)`)
    annotation[name as keyof OutboxAnnotation] = value
  }
  return annotation
}

function invalid(model: string, why: string): OutboxError {
  return new OutboxError('OUTBOX_INVALID_OPTIONS', `/// @outbox on model ${model}: ${why}`)
}
