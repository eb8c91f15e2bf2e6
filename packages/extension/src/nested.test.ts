import { describe, expect, it } from 'vitest'
import type { OutboxDatamodel } from './datamodel.js'
import { assertNoCapturedNestedWrites } from './nested.js'

const scalar = { kind: 'scalar' as const, type: 'Int', isList: false }
/** Department 1-n Employee (key on Employee); Employee 1-n Note (key on Note, Note not captured). */
const datamodel: OutboxDatamodel = {
  models: {
    Department: {
      dbName: 'department',
      primaryKey: ['id'],
      fields: { id: scalar },
      relations: {
        employees: { model: 'Employee', holdsForeignKey: false, fields: [], references: [], onDelete: null },
      },
    },
    Employee: {
      dbName: 'employee',
      primaryKey: ['id'],
      fields: { id: scalar, departmentId: scalar },
      relations: {
        department: {
          model: 'Department',
          holdsForeignKey: true,
          fields: ['departmentId'],
          references: ['id'],
          onDelete: 'SetNull',
        },
        notes: { model: 'Note', holdsForeignKey: false, fields: [], references: [], onDelete: null },
      },
    },
    Note: {
      dbName: 'note',
      primaryKey: ['id'],
      fields: { id: scalar },
      relations: {
        employee: {
          model: 'Employee',
          holdsForeignKey: true,
          fields: ['employeeId'],
          references: ['id'],
          onDelete: 'Cascade',
        },
      },
    },
  },
}
const captured = new Set(['Department', 'Employee'])
const check = (model: string, data: unknown) => () =>
  assertNoCapturedNestedWrites(datamodel, captured, model, data, `${model}.create.data`)

describe('assertNoCapturedNestedWrites', () => {
  it('allows scalar data and writes into models that are not captured', () => {
    expect(check('Employee', { id: 1, departmentId: 2 })).not.toThrow()
    expect(check('Employee', { notes: { create: [{ id: 1 }], deleteMany: {} } })).not.toThrow()
    expect(check('Employee', undefined)).not.toThrow()
  })

  it('allows connect/disconnect from the side that holds the key', () => {
    expect(check('Employee', { department: { connect: { id: 1 } } })).not.toThrow()
    expect(check('Employee', { department: { disconnect: true } })).not.toThrow()
  })

  it.each<[string, string, unknown, string]>([
    [
      'create',
      'Department',
      { employees: { create: [{ id: 1 }] } },
      'Department.create.data.employees.create',
    ],
    ['createMany', 'Department', { employees: { createMany: { data: [] } } }, 'employees.createMany'],
    ['connectOrCreate', 'Employee', { department: { connectOrCreate: {} } }, 'department.connectOrCreate'],
    ['update', 'Employee', { department: { update: { name: 'x' } } }, 'department.update'],
    ['deleteMany', 'Department', { employees: { deleteMany: {} } }, 'employees.deleteMany'],
    [
      'connect from the other side',
      'Department',
      { employees: { connect: [{ id: 1 }] } },
      'employees.connect',
    ],
    ['set from the other side', 'Department', { employees: { set: [] } }, 'employees.set'],
  ])('refuses a nested %s into a captured model, naming the path', (_name, model, data, path) => {
    expect(check(model, data)).toThrow(path)
    expect(check(model, data)).toThrow(expect.objectContaining({ code: 'OUTBOX_UNSUPPORTED_WRITE' }))
  })

  it('looks through writes into models that are not captured', () => {
    const data = { notes: { create: [{ id: 1, employee: { create: { id: 2 } } }] } }
    expect(check('Employee', data)).toThrow('Employee.create.data.notes.create.employee.create')
  })
})
