/**
 * Capture of tables the test models do not cover, built from hand-written datamodels with
 * `captureScript` and written with raw SQL (the triggers capture any writer): native types whose
 * SQL text is not Prisma's value, identifiers that need quoting, long names, values the database
 * fills in, composite keys of every key type, and updated primary keys.
 */
import type { TestDatabase } from '@prisma-outbox/devkit'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { captureScript, type OutboxDatamodel, type OutboxFieldInfo } from '../src/index.js'
import { dispose, outboxRows, testDatabase } from './helpers.js'

let db: TestDatabase

beforeAll(async () => {
  db = await testDatabase()
})
afterAll(async () => {
  await dispose(db)
})
beforeEach(async () => {
  await db.pool.query('TRUNCATE outbox_event')
})

const scalar = (type: string, extra: Partial<OutboxFieldInfo> = {}): OutboxFieldInfo => ({
  kind: 'scalar',
  type,
  isList: false,
  ...extra,
})

/** Creates `ddl`, captures `model` with the given fields and returns the installed script. */
async function capture(ddl: string, models: OutboxDatamodel['models'], enums?: OutboxDatamodel['enums']) {
  await db.pool.query(ddl)
  const datamodel: OutboxDatamodel = { models, ...(enums ? { enums } : {}) }
  const captured = new Map(
    Object.keys(models).map((m) => [m, { aggregateType: m.toLowerCase(), topic: 't' }]),
  )
  const script = captureScript(datamodel, { captured, outboxTable: 'outbox_event' })
  await db.pool.query(script)
  return script
}

describe('native types whose SQL text differs from the value Prisma reads', () => {
  it('Decimal @db.Money is a plain decimal string, in the payload, lists and the aggregate id', async () => {
    await capture(`CREATE TABLE money_row (price money PRIMARY KEY, prices money[], maybe money)`, {
      MoneyRow: {
        dbName: 'money_row',
        primaryKey: ['price'],
        relations: {},
        fields: {
          price: scalar('Decimal', { nativeType: 'Money' }),
          prices: scalar('Decimal', { nativeType: 'Money', isList: true }),
          maybe: scalar('Decimal', { nativeType: 'Money' }),
        },
      },
    })
    await db.pool.query(`INSERT INTO money_row VALUES (1234.5, ARRAY[1.5, -2000]::money[], NULL)`)
    const [row] = await outboxRows(db)
    expect(row?.aggregateid).toBe('1234.50')
    expect(row?.payload).toEqual({ price: '1234.50', prices: ['1.50', '-2000.00'], maybe: null })
  })

  it('Int @db.Oid is a JSON number, alone and in lists', async () => {
    await capture(`CREATE TABLE oid_row (id oid PRIMARY KEY, ids oid[])`, {
      OidRow: {
        dbName: 'oid_row',
        primaryKey: ['id'],
        relations: {},
        fields: {
          id: scalar('Int', { nativeType: 'Oid' }),
          ids: scalar('Int', { nativeType: 'Oid', isList: true }),
        },
      },
    })
    await db.pool.query(`INSERT INTO oid_row VALUES (4294967295, ARRAY[1, 2]::oid[])`)
    const [row] = await outboxRows(db)
    expect(row?.aggregateid).toBe('4294967295')
    expect(row?.payload).toEqual({ id: 4294967295, ids: [1, 2] })
  })

  it('String @db.Char keeps its padding, as Prisma reads it', async () => {
    await capture(`CREATE TABLE char_row (id char(4) PRIMARY KEY)`, {
      CharRow: {
        dbName: 'char_row',
        primaryKey: ['id'],
        relations: {},
        fields: { id: scalar('String', { nativeType: 'Char' }) },
      },
    })
    await db.pool.query(`INSERT INTO char_row VALUES ('ab')`)
    const [row] = await outboxRows(db)
    expect(row?.payload).toEqual({ id: 'ab  ' })
  })
})

describe('lists', () => {
  it('lists of every scalar type keep order, nulls and the element encoding', async () => {
    await capture(
      `CREATE TABLE lists (id int PRIMARY KEY, d numeric(6, 2)[], t timestamptz(3)[], day date[], b bytea[],
        big bigint[], f float8[], j jsonb[], s text[], empty int[], none int[])`,
      {
        Lists: {
          dbName: 'lists',
          primaryKey: ['id'],
          relations: {},
          fields: {
            id: scalar('Int'),
            d: scalar('Decimal', { isList: true }),
            t: scalar('DateTime', { isList: true, nativeType: 'Timestamptz' }),
            day: scalar('DateTime', { isList: true, nativeType: 'Date' }),
            b: scalar('Bytes', { isList: true }),
            big: scalar('BigInt', { isList: true }),
            f: scalar('Float', { isList: true }),
            j: scalar('Json', { isList: true }),
            s: scalar('String', { isList: true }),
            empty: scalar('Int', { isList: true }),
            none: scalar('Int', { isList: true }),
          },
        },
      },
    )
    await db.pool.query(`INSERT INTO lists VALUES (1, ARRAY[2, 1.5, NULL], ARRAY['2024-02-29 23:30:00-01'::timestamptz],
      ARRAY['2024-02-29'::date], ARRAY['\\x00ff'::bytea], ARRAY[9007199254740993], ARRAY['NaN', 0.5, '-Infinity']::float8[],
      ARRAY['{"a": [1]}', 'null']::jsonb[], ARRAY['x', NULL], '{}', NULL)`)
    const [row] = await outboxRows(db)
    expect(row?.payload).toEqual({
      id: 1,
      d: ['2.00', '1.50', null],
      t: ['2024-03-01T00:30:00.000Z'],
      day: ['2024-02-29T00:00:00.000Z'],
      b: ['AP8='],
      big: ['9007199254740993'],
      f: ['NaN', 0.5, '-Infinity'],
      j: [{ a: [1] }, null],
      s: ['x', null],
      empty: [],
      none: null,
    })
  })
})

describe('DateTime values outside the years 1 to 9999', () => {
  it('are written as JavaScript writes them (expanded years), infinities as strings', async () => {
    await capture(`CREATE TABLE far (id int PRIMARY KEY, at timestamp(3), tz timestamptz(3), day date)`, {
      Far: {
        dbName: 'far',
        primaryKey: ['id'],
        relations: {},
        fields: {
          id: scalar('Int'),
          at: scalar('DateTime', { nativeType: 'Timestamp' }),
          tz: scalar('DateTime', { nativeType: 'Timestamptz' }),
          day: scalar('DateTime', { nativeType: 'Date' }),
        },
      },
    })
    await db.pool.query(`INSERT INTO far VALUES
      (1, '2024-02-29 12:34:56.789', '2024-02-29 12:34:56.789+00', '2024-02-29'),
      (2, '10000-01-01 00:00:00', '10000-01-01 00:00:00+00', '10000-01-01'),
      (3, '0044-03-15 12:00:00 BC', '0044-03-15 12:00:00+00 BC', '0044-03-15 BC'),
      (4, '0001-01-01 00:00:00 BC', '0001-01-01 00:00:00+00 BC', '0001-01-01 BC'),
      (5, 'infinity', '-infinity', 'infinity')`)
    const rows = await outboxRows(db)
    // What new Date(...).toISOString() gives for these instants, which JavaScript reads back.
    const big = '+010000-01-01T00:00:00.000Z'
    const bc = '-000043-03-15T12:00:00.000Z'
    for (const iso of [big, bc, '0000-01-01T00:00:00.000Z']) expect(new Date(iso).toISOString()).toBe(iso)
    expect(rows.map((r) => r.payload)).toEqual([
      {
        id: 1,
        at: '2024-02-29T12:34:56.789Z',
        tz: '2024-02-29T12:34:56.789Z',
        day: '2024-02-29T00:00:00.000Z',
      },
      { id: 2, at: big, tz: big, day: big },
      { id: 3, at: bc, tz: bc, day: '-000043-03-15T00:00:00.000Z' },
      {
        id: 4,
        at: '0000-01-01T00:00:00.000Z',
        tz: '0000-01-01T00:00:00.000Z',
        day: '0000-01-01T00:00:00.000Z',
      },
      { id: 5, at: 'infinity', tz: '-infinity', day: 'infinity' },
    ])
  })
})

describe('identifiers that need quoting', () => {
  it('mixed case, spaces, quotes and reserved words in table, column and enum names', async () => {
    await capture(
      `CREATE TYPE "Mood ""x""" AS ENUM ('very happy', 'sad');
       CREATE TABLE "Odd ""Table"" select" ("Id" int PRIMARY KEY, "select" text, "my col" "Mood ""x""", "moods" "Mood ""x"""[])`,
      {
        OddTable: {
          dbName: 'Odd "Table" select',
          primaryKey: ['id'],
          relations: {},
          fields: {
            id: scalar('Int', { dbName: 'Id' }),
            select: scalar('String'),
            mood: { kind: 'enum', type: 'Mood', isList: false, dbName: 'my col' },
            moods: { kind: 'enum', type: 'Mood', isList: true },
          },
        },
      },
      { Mood: { dbName: 'Mood "x"', values: { VERY_HAPPY: 'very happy', sad: 'sad' } } },
    )
    await db.pool.query(
      `INSERT INTO "Odd ""Table"" select" VALUES (1, 'it''s', 'very happy', ARRAY['sad', 'very happy']::"Mood ""x"""[])`,
    )
    const [row] = await outboxRows(db)
    expect(row?.aggregatetype).toBe('oddtable')
    expect(row?.payload).toEqual({ id: 1, select: "it's", mood: 'VERY_HAPPY', moods: ['sad', 'VERY_HAPPY'] })
  })

  it('long names of multi-byte characters, cut anywhere inside a character, still get valid function names', async () => {
    const names = [`${'é'.repeat(31)}`, `a${'€'.repeat(20)}`, `ab${'😀'.repeat(15)}`]
    const models = Object.fromEntries(
      names.map((dbName, i) => [
        `Mb${i}`,
        { dbName, primaryKey: ['id'], relations: {}, fields: { id: scalar('Int') } },
      ]),
    )
    await capture(names.map((n) => `CREATE TABLE "${n}" (id int PRIMARY KEY)`).join('; '), models)
    for (const n of names) await db.pool.query(`INSERT INTO "${n}" VALUES (1)`)
    expect((await outboxRows(db)).map((r) => r.aggregatetype)).toEqual(['mb0', 'mb1', 'mb2'])
  })

  it('two 63-byte table names sharing their first 30 bytes get functions of their own', async () => {
    const a = `${'x'.repeat(62)}a`
    const b = `${'x'.repeat(62)}b`
    const model = (dbName: string) => ({
      dbName,
      primaryKey: ['id'],
      relations: {},
      fields: { id: scalar('Int') },
    })
    await capture(`CREATE TABLE "${a}" (id int PRIMARY KEY); CREATE TABLE "${b}" (id int PRIMARY KEY)`, {
      LongA: model(a),
      LongB: model(b),
    })
    await db.pool.query(`INSERT INTO "${a}" VALUES (1); INSERT INTO "${b}" VALUES (2)`)
    const rows = await outboxRows(db)
    expect(rows.map((r) => `${r.aggregatetype} ${r.aggregateid}`)).toEqual(['longa 1', 'longb 2'])
  })
})

describe('values the database fills in', () => {
  it('defaults, sequences and generated columns are in the payload as stored', async () => {
    await capture(
      `CREATE TABLE filled (id serial PRIMARY KEY, at timestamp(3) NOT NULL DEFAULT '2024-02-29 12:34:56.789',
        n bigint GENERATED ALWAYS AS (id * 10) STORED, note text DEFAULT 'dflt', legacy point)`,
      {
        Filled: {
          dbName: 'filled',
          primaryKey: ['id'],
          relations: {},
          fields: {
            id: scalar('Int'),
            at: scalar('DateTime', { nativeType: 'Timestamp' }),
            n: scalar('BigInt'),
            note: scalar('String'),
            legacy: { kind: 'unsupported', type: 'point', isList: false },
          },
        },
      },
    )
    await db.pool.query(`INSERT INTO filled DEFAULT VALUES`)
    await db.pool.query(`UPDATE filled SET note = NULL`)
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.aggregateid, r.payload])).toEqual([
      ['filled.created', '1', { id: 1, at: '2024-02-29T12:34:56.789Z', n: '10', note: 'dflt' }],
      ['filled.updated', '1', { id: 1, at: '2024-02-29T12:34:56.789Z', n: '10', note: null }],
    ])
  })
})

describe('keys', () => {
  it('composite ids of DateTime, Bytes, BigInt and Decimal parts are encoded as the payload encodes them', async () => {
    await capture(
      `CREATE TABLE ck (at timestamptz, b bytea, big bigint, d numeric(6, 2), PRIMARY KEY (at, b, big, d))`,
      {
        Ck: {
          dbName: 'ck',
          primaryKey: ['at', 'b', 'big', 'd'],
          relations: {},
          fields: {
            at: scalar('DateTime', { nativeType: 'Timestamptz' }),
            b: scalar('Bytes'),
            big: scalar('BigInt'),
            d: scalar('Decimal'),
          },
        },
      },
    )
    await db.pool.query(
      `INSERT INTO ck VALUES ('2024-02-29 12:34:56.789+02', '\\x0001fefff0', 9007199254740993, 1.5)`,
    )
    const [row] = await outboxRows(db)
    // Base64 "AAH+//A=" has no ":" or "%"; the timestamp's ":" are percent-encoded.
    expect(row?.aggregateid).toBe('2024-02-29T10%3A34%3A56.789Z:AAH+//A=:9007199254740993:1.50')
    expect(row?.payload).toEqual({
      at: '2024-02-29T10:34:56.789Z',
      b: 'AAH+//A=',
      big: '9007199254740993',
      d: '1.50',
    })
  })

  it('an update of the primary key is one updated event carrying the new key; a no-op update is still updated', async () => {
    await capture(`CREATE TABLE pk (id int PRIMARY KEY, code text UNIQUE)`, {
      Pk: {
        dbName: 'pk',
        primaryKey: ['id'],
        relations: {},
        fields: { id: scalar('Int'), code: scalar('String') },
      },
    })
    await db.pool.query(`INSERT INTO pk VALUES (1, 'a')`)
    await db.pool.query(`UPDATE pk SET id = 2 WHERE code = 'a'`)
    await db.pool.query(`UPDATE pk SET code = code WHERE id = 2`)
    await db.pool.query(`UPDATE pk SET code = 'b' WHERE id = 99`)
    const rows = await outboxRows(db)
    expect(rows.map((r) => `${r.type} ${r.aggregateid} ${r.payload.code}`)).toEqual([
      'pk.created 1 a',
      'pk.updated 2 a',
      'pk.updated 2 a',
    ])
  })
})
