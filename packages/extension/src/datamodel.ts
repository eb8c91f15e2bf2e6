/**
 * The schema facts the extension needs and Prisma's runtime does not expose (primary keys,
 * relation sides, referential actions, `/// @outbox` annotations). `prisma-outbox-generator`
 * writes them from the DMMF during `prisma generate`.
 * @module
 */

export interface OutboxFieldInfo {
  kind: 'scalar' | 'object' | 'enum' | 'unsupported'
  type: string
  isList: boolean
  /** The column name when `@map` gives one (default: the field name). */
  dbName?: string
  /** The native type when `@db.X` gives one, e.g. `Timestamptz`, `Date`, `Real`. */
  nativeType?: string
  /** True when the field is optional (`String?`): its payload value may be null. */
  optional?: boolean
}

export interface OutboxRelationInfo {
  /** The related model. */
  model: string
  /** True when the foreign key columns live on this model (`@relation(fields: [...])`). */
  holdsForeignKey: boolean
  /** Scalar fields on this model holding the key (empty when the other side holds it). */
  fields: readonly string[]
  /** Fields on the related model the key references. */
  references: readonly string[]
  /** Referential action when the referenced record is deleted (on the side holding the key). */
  onDelete: string | null
}

/** An enum whose values are stored under other names (`@map`): Prisma name → database value. */
export interface OutboxEnumInfo {
  dbName?: string
  values: Record<string, string>
}

export interface OutboxModelInfo {
  dbName: string
  /** Primary key fields in declaration order (`@id` or `@@id`). */
  primaryKey: readonly string[]
  fields: Record<string, OutboxFieldInfo>
  relations: Record<string, OutboxRelationInfo>
  /** Present when the model carries a `/// @outbox` annotation. */
  outbox?: { aggregateType?: string; topic?: string }
  /**
   * The payload's schema version (a hash of its shape), written by the generator; the capture
   * triggers put it in each event's `schemaVersion` header.
   */
  version?: string
}

export interface OutboxDatamodel {
  models: Record<string, OutboxModelInfo>
  /** Enums with `@map`ped values; the others are stored under their Prisma names. */
  enums?: Record<string, OutboxEnumInfo>
}
