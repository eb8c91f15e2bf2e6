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

/** Words one or two edits away from "outbox" (case-insensitive), as in `@outbx` or `@Outbox`. */
const NEAR_MISS = /@([A-Za-z]{4,8})\b/g

/**
 * Annotations that look meant as `/// @outbox` but are not read as one: a misspelt or
 * differently cased word (`/// @outbx`, `/// @Outbox`), or a `//` comment, which Prisma does not
 * keep as documentation (`// @outbox`). Each warning names the line.
 */
export function annotationWarnings(schema: string): string[] {
  const warnings: string[] = []
  for (const [index, line] of schema.split(/\r?\n/).entries()) {
    const comment = /^\s*(\/{2,})(.*)$/.exec(line)
    if (!comment) continue
    const [, slashes, text] = comment as unknown as [string, string, string]
    const where = `line ${index + 1} ("${line.trim()}")`
    for (const [, word = ''] of text.matchAll(NEAR_MISS)) {
      const exact = word === 'outbox'
      if (exact && slashes === '///') continue
      if (exact) {
        warnings.push(
          `${where}: a "${slashes}" comment is not model documentation, so this @outbox is ignored; write "/// @outbox"`,
        )
      } else if (editDistance(word.toLowerCase(), 'outbox') <= 2) {
        warnings.push(
          `${where}: "@${word}" is not an annotation the generator reads; did you mean "/// @outbox"?`,
        )
      }
    }
  }
  return warnings
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      )
    }
    previous = current
  }
  return previous[b.length] as number
}
