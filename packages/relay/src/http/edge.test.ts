/**
 * The layers of src/, checked by walking the imports of every source file:
 * - `core/` (engine, settle, SQL, errors, options, watch): web-standard APIs and zod only;
 * - `http/` (the Hono app): core, hono, zod;
 * - `publishers/fetch.ts` and `publishers/common.ts` (what the Kafka publishers share): core only;
 * - `publishers/kafkajs.ts`, `kafka-health.ts`, `kafka-log.ts` and `kafkajs-idle.ts`: core, common
 *   and kafkajs (`kafkajs-idle.ts` reaches kafkajs' request queue through `node:module`);
 *   `publishers/platformatic.ts`: core, common and `@platformatic/kafka`; `publishers/confluent.ts`:
 *   core, common and `@confluentinc/kafka-javascript` (loaded at run time);
 * - `otel/` (tracing): core and `@opentelemetry/api`, so it runs wherever the engine does;
 * - `cli/` (config, pool, server, CLI) and `stream/` (logical replication): anything, Node included.
 * A lower layer never imports a higher one, even for types, and nothing but the entry point
 * imports `cli/`. What is allowed for a folder is checked transitively: whatever a core file
 * reaches is core. Each optional Kafka client is named only by its own publisher file, so a relay
 * that does not choose it never loads it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const src = resolve(dirname(fileURLToPath(import.meta.url)), '..')

interface Import {
  spec: string
  typeOnly: boolean
}

/** Import and re-export specifiers of a file, static and dynamic. */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8')
  const found: Import[] = []
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm))
    found.push({ spec: m[2] as string, typeOnly: m[1] !== undefined })
  for (const m of text.matchAll(/import\(\s*'([^']+)'\s*\)/g))
    found.push({ spec: m[1] as string, typeOnly: false })
  return found
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : []
  })
}

interface Layer {
  /** Which files (path relative to src/) the rule is for. */
  files: RegExp
  /** Packages a file of the layer may import at run time (type-only imports are erased). */
  packages: RegExp
  /** Folders (relative to src/) a file of the layer may import from, types included. */
  local: RegExp
}

const NOTHING = /^$/
const LAYERS: Record<string, Layer> = {
  core: { files: /^core\//, packages: /^zod$/, local: /^core\// },
  http: {
    files: /^http\//,
    packages: /^(hono|hono\/.+|zod)$/,
    local: /^(core|http)\//,
  },
  fetch: { files: /^publishers\/(fetch|common)\.ts$/, packages: NOTHING, local: /^core\// },
  kafkajs: {
    files: /^publishers\/(kafkajs|kafka-health|kafka-log|kafkajs-idle)\.ts$/,
    packages: /^(kafkajs|node:module)$/,
    local: /^(core\/|publishers\/(kafka-health|kafka-log|kafkajs-idle|common)\.ts$)/,
  },
  platformatic: {
    files: /^publishers\/platformatic\.ts$/,
    packages: /^@platformatic\/kafka$/,
    local: /^(core\/|publishers\/common\.ts$)/,
  },
  confluent: {
    files: /^publishers\/confluent\.ts$/,
    packages: /^@confluentinc\/kafka-javascript$/,
    local: /^(core\/|publishers\/common\.ts$)/,
  },
  otel: { files: /^otel\//, packages: /^@opentelemetry\/api$/, local: /^(core|otel)\// },
  cli: { files: /^cli\//, packages: /./, local: /^(core|http|publishers|cli|stream|otel)\// },
  stream: { files: /^stream\//, packages: /./, local: /^(core|publishers|cli|stream)\// },
  root: { files: /^index\.ts$/, packages: NOTHING, local: /./ },
}

function layerOf(file: string): [string, Layer] {
  const rel = relative(src, file)
  const entry = Object.entries(LAYERS).find(([, layer]) => layer.files.test(rel))
  if (!entry) throw new Error(`${rel} belongs to no layer: add it to a folder of src/`)
  return entry
}

/** Every import of `files` that breaks its layer's rule, as `file imports spec`. */
function violations(files: string[]): string[] {
  const offenders: string[] = []
  for (const file of files) {
    const [, layer] = layerOf(file)
    for (const { spec, typeOnly } of importsOf(file)) {
      if (spec.startsWith('.')) {
        const target = relative(src, resolve(dirname(file), spec.replace(/\.js$/, '.ts')))
        if (!layer.local.test(target)) offenders.push(`${relative(src, file)} imports ${target}`)
      } else if (!typeOnly && !layer.packages.test(spec)) {
        offenders.push(`${relative(src, file)} imports ${spec}`)
      }
    }
  }
  return offenders
}

/** The optional Kafka clients and the one file that may name each (in an import or a string). */
const OPTIONAL_CLIENTS: Record<string, string> = {
  '@platformatic/kafka': 'publishers/platformatic.ts',
  '@confluentinc/kafka-javascript': 'publishers/confluent.ts',
}

/** Files (relative to src/) that name `pkg` as a module: a quoted `pkg` or `pkg/…`. */
function filesNaming(
  files: string[],
  pkg: string,
  read: (file: string) => string = (f) => readFileSync(f, 'utf8'),
): string[] {
  const quoted = new RegExp(`['"]${pkg.replace(/[/.]/g, '\\$&')}(/[^'"]*)?['"]`)
  return files.filter((f) => quoted.test(read(f))).map((f) => relative(src, f))
}

describe('layers of src/', () => {
  const files = sourceFiles(src)

  it('Should put every source file in a layer', () => {
    expect(files.map((f) => layerOf(f)[0])).not.toContain(undefined)
    expect(files.map((f) => relative(src, f))).toEqual(
      expect.arrayContaining([
        'core/engine.ts',
        'core/settle.ts',
        'core/publisher.ts',
        'http/app.ts',
        'cli/main.ts',
      ]),
    )
  })

  it('Should keep each folder to its allowed dependencies', () => {
    expect(violations(files)).toEqual([])
  })

  it('Should name each optional Kafka client only in its own publisher file', () => {
    for (const [pkg, file] of Object.entries(OPTIONAL_CLIENTS))
      expect(filesNaming(files, pkg)).toEqual([file])
  })

  it('Should catch a file that names an optional client, in a static or a run-time import', () => {
    const text = (spec: string) => `const m = await import(${spec})`
    const named = (spec: string) => {
      const file = join(src, 'publishers', `probe-${Math.random().toString(36).slice(2)}.ts`)
      return filesNaming([file], '@platformatic/kafka', () => text(spec)).length > 0
    }
    expect(named("'@platformatic/kafka'")).toBe(true)
    expect(named('"@platformatic/kafka/dist/index.js"')).toBe(true)
    expect(named("'@platformatic/kafka-opentelemetry'")).toBe(false)
    expect(named('the `@platformatic/kafka` client, in a comment')).toBe(false)
  })

  it('Should keep core free of Kafka clients and Node built-ins, transitively from the engine', () => {
    const queue = [join(src, 'core', 'engine.ts'), join(src, 'core', 'index.ts')]
    const seen = new Set<string>()
    const packages = new Set<string>()
    while (queue.length > 0) {
      const file = queue.shift() as string
      if (seen.has(file)) continue
      seen.add(file)
      for (const { spec, typeOnly } of importsOf(file)) {
        if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')))
        else if (!typeOnly) packages.add(spec)
      }
    }
    expect([...packages]).toEqual(['zod'])
    expect([...seen].map((f) => relative(src, f))).toEqual(
      expect.arrayContaining([
        'core/settle.ts',
        'core/publisher.ts',
        'core/db.ts',
        'core/sql/claim-batch.ts',
      ]),
    )
  })

  it('Should report a core file that imports a Kafka client or a higher layer', () => {
    // The rule itself, on the shape the engine once had: settle → publisher (kafkajs).
    const layer = LAYERS.core as Layer
    expect(layer.packages.test('kafkajs')).toBe(false)
    expect(layer.packages.test('node:net')).toBe(false)
    expect(layer.local.test('publishers/kafkajs.ts')).toBe(false)
    expect(layer.local.test('cli/pool.ts')).toBe(false)
  })
})
