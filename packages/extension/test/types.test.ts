/**
 * Type tests, checked by `tsc --noEmit` (tsconfig includes test/): model names in options come
 * from the schema, and `$outbox.emit` is typed on the client and on transaction clients. The
 * runtime assertions make the same points where they can be observed.
 */
import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  type DeclaredEvents,
  type EmitInput,
  OutboxError,
  type OutboxOptionsWithEvents,
} from '../src/index.js'
import type { PrismaClient } from './generated/client/client.js'
import { type OutboxModelName, outbox } from './generated/outbox/index.js'
import type { ExtendedPrisma } from './helpers.js'

/** The client an interactive `$transaction` callback receives (the last overload is the callback form). */
type Tx = Parameters<Parameters<ExtendedPrisma['$transaction']>[0]>[0]

describe('types', () => {
  it('model names in options are the schema models', () => {
    expectTypeOf<OutboxModelName>().toEqualTypeOf<
      | 'Employee'
      | 'Department'
      | 'Membership'
      | 'Blob'
      | 'AuditNote'
      | 'Parent'
      | 'Mid'
      | 'Leaf'
      | 'Probe'
      | 'Pair'
      | 'Wide'
      | 'OutboxEvent'
    >()
    expectTypeOf(outbox)
      .parameter(0)
      .toEqualTypeOf<OutboxOptionsWithEvents<OutboxModelName, DeclaredEvents | undefined> | undefined>()
    outbox({ models: { AuditNote: true, Employee: { aggregateType: 'staff' } } })
    // @ts-expect-error: Nope is not a model of the schema
    expect(() => outbox({ models: { Nope: true } })).toThrow(OutboxError)
    // @ts-expect-error: outboxModel must be a model of the schema
    expect(() => outbox({ outboxModel: 'Nope' })).toThrow(OutboxError)
    // @ts-expect-error: model settings take aggregateType and topic only
    expect(() => outbox({ models: { Employee: { key: 'x' } } })).toThrow(OutboxError)
  })

  it('$outbox.emit is typed on the root client and on transaction clients', () => {
    expectTypeOf<ExtendedPrisma['$outbox']['emit']>().parameter(0).toEqualTypeOf<EmitInput>()
    expectTypeOf<ExtendedPrisma['$outbox']['emit']>().returns.toEqualTypeOf<Promise<number>>()
    expectTypeOf<Tx['$outbox']['emit']>().parameter(0).toEqualTypeOf<EmitInput>()
    expectTypeOf<EmitInput['aggregateId']>().toEqualTypeOf<string | number | bigint>()
    // @ts-expect-error: type is required
    const missingType: EmitInput = { aggregateType: 'a', aggregateId: 1, payload: {} }
    expect(missingType).not.toHaveProperty('type')
  })

  it('the extended client keeps the model delegates and their result types', () => {
    expectTypeOf<ExtendedPrisma['employee']['create']>().toBeFunction()
    expectTypeOf<Awaited<ReturnType<Tx['employee']['findFirstOrThrow']>>['email']>().toEqualTypeOf<string>()
    expectTypeOf<ExtendedPrisma>().not.toEqualTypeOf<PrismaClient>()
  })
})
