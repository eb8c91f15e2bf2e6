export { type CaptureSqlOptions, captureScript, dropCaptureStatements } from './capture-sql.js'
export type {
  OutboxDatamodel,
  OutboxEnumInfo,
  OutboxFieldInfo,
  OutboxModelInfo,
  OutboxRelationInfo,
} from './datamodel.js'
export {
  type DeclaredEmitInput,
  type DeclaredEvent,
  type DeclaredEvents,
  defineEvents,
  type EventJsonSchema,
  eventJsonSchemas,
} from './declared-events.js'
export type { EmitInput } from './emit.js'
export { isOutboxError, OutboxError, type OutboxErrorCode } from './errors.js'
export {
  createOutbox,
  type OutboxApi,
  type OutboxExtension,
  type OutboxOptionsWithEvents,
  outbox,
} from './extension.js'
export { toJsonSafe } from './json.js'
export { defaultAggregateType, defaultTopic, type ModelOutboxOptions, type OutboxOptions } from './options.js'
