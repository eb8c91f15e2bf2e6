/**
 * The HTTP layer must stay edge-friendly: it may import web-standard APIs, hono, zod, and only
 * the relay's pure modules (types, SQL text builders, the error class) — never Node built-ins,
 * pg or kafkajs, directly or through what it imports.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const here = dirname(fileURLToPath(import.meta.url))
const src = resolve(here, '..')

/** Runtime (non-type) import specifiers of a file. */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const specs: string[] = []
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)) {
    if (m[2]) continue // import type / export type
    specs.push(m[3] as string)
  }
  for (const m of text.matchAll(/import\(\s*'([^']+)'\s*\)/g)) specs.push(m[1] as string)
  return specs
}

describe('edge-friendliness of src/http and the fetch publisher', () => {
  it('Should import only hono, zod and pure relay modules, transitively', () => {
    const allowedPackages = /^(hono|hono\/.+|zod)$/
    const queue = readdirSync(here)
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => join(here, f))
      .concat(join(src, 'publishers', 'fetch.ts'))
    const seen = new Set<string>()
    const offenders: string[] = []
    while (queue.length > 0) {
      const file = queue.shift() as string
      if (seen.has(file)) continue
      seen.add(file)
      for (const spec of runtimeImports(file)) {
        if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')))
        else if (!allowedPackages.test(spec)) offenders.push(`${relative(src, file)} imports ${spec}`)
      }
    }
    expect(offenders).toEqual([])
    // sanity: the walk reached the shared pure modules
    expect([...seen].map((f) => relative(src, f))).toEqual(
      expect.arrayContaining(['core/errors.ts', 'core/db.ts', 'core/sql/table.ts']),
    )
  })
})
