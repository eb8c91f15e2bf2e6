import { describe, expect, it } from 'vitest'
import { type DmmfModel, datamodelFromDmmf, renderModule } from './datamodel-from-dmmf.js'

const field = (name: string, extra: Partial<DmmfModel['fields'][number]> = {}) => ({
  name,
  kind: 'scalar',
  type: 'Int',
  isList: false,
  isId: false,
  isRequired: true,
  ...extra,
})

const models: DmmfModel[] = [
  {
    name: 'Employee',
    dbName: 'employee',
    documentation: 'People.\n@outbox(topic: "hr.employees")',
    primaryKey: null,
    fields: [
      field('id', { isId: true, type: 'String' }),
      field('departmentId', { isRequired: false }),
      field('department', {
        kind: 'object',
        type: 'Department',
        relationFromFields: ['departmentId'],
        relationToFields: ['id'],
      }),
      field('teamId'),
      field('team', {
        kind: 'object',
        type: 'Team',
        relationFromFields: ['teamId'],
        relationToFields: ['id'],
      }),
    ],
  },
  {
    name: 'Department',
    dbName: null,
    primaryKey: null,
    fields: [
      field('id', { isId: true }),
      field('employees', { kind: 'object', type: 'Employee', isList: true }),
    ],
  },
  {
    name: 'Team',
    dbName: 'team',
    primaryKey: { fields: ['orgId', 'name'] },
    fields: [
      field('orgId'),
      field('name', { type: 'String' }),
      field('employees', { kind: 'object', type: 'Employee', isList: true }),
    ],
  },
]

describe('datamodelFromDmmf', () => {
  const { models: out } = datamodelFromDmmf(models)

  it('reads primary keys from @id and @@id, and table names', () => {
    expect(out.Employee?.primaryKey).toEqual(['id'])
    expect(out.Team?.primaryKey).toEqual(['orgId', 'name'])
    expect(out.Department?.dbName).toBe('Department')
    expect(out.Team?.dbName).toBe('team')
  })

  it("fills in Prisma's default referential actions on the side holding the key", () => {
    expect(out.Employee?.relations.department).toEqual({
      model: 'Department',
      holdsForeignKey: true,
      fields: ['departmentId'],
      references: ['id'],
      onDelete: 'SetNull',
    })
    expect(out.Employee?.relations.team?.onDelete).toBe('Restrict')
    expect(out.Department?.relations.employees).toMatchObject({ holdsForeignKey: false, onDelete: null })
  })

  it('keeps the @outbox annotation only where there is one', () => {
    expect(out.Employee?.outbox).toEqual({ topic: 'hr.employees' })
    expect(out.Department).not.toHaveProperty('outbox')
  })

  it('renders a module that binds the datamodel to createOutbox', () => {
    const source = renderModule(datamodelFromDmmf(models), '../src/index.js')
    expect(source).toContain("import { createOutbox } from '../src/index.js'")
    expect(source).toContain('export const outbox = createOutbox(datamodel)')
    expect(source).toContain('"topic": "hr.employees"')
  })
})
