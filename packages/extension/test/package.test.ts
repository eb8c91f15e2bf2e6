/**
 * The published shape: every path package.json points at exists after `npm run build`, and each
 * entry point loads. Run `npm run build` (or `npm run generate`) first.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as {
  exports: Record<string, string | Record<string, string>>
  bin: Record<string, string>
  files: string[]
}

/** Every file path in `exports`, with the export and condition it belongs to. */
const exportPaths = Object.entries(pkg.exports).flatMap(([subpath, target]) =>
  typeof target === 'string'
    ? [{ subpath, condition: 'default', path: target }]
    : Object.entries(target).map(([condition, path]) => ({ subpath, condition, path })),
)

describe('package.json', () => {
  it.each(exportPaths)('exports["$subpath"].$condition → $path exists', ({ path }) => {
    expect(existsSync(`${root}/${path}`), `${path} is missing; run npm run build`).toBe(true)
  })

  it.each(Object.entries(pkg.bin))('bin %s → %s exists and is a node script', (_name, path) => {
    expect(existsSync(`${root}/${path}`)).toBe(true)
    expect(statSync(`${root}/${path}`).isFile()).toBe(true)
    expect(readFileSync(`${root}/${path}`, 'utf8')).toMatch(/^#!\/usr\/bin\/env node/)
  })

  it('every exported path is inside a folder listed in "files"', () => {
    for (const { path } of exportPaths) {
      if (path === './package.json') continue
      const top = path.replace(/^\.\//, '').split('/')[0]
      expect(pkg.files, `${path} would not be published`).toContain(top)
    }
  })

  it.each(exportPaths.filter((e) => e.condition === 'default' && e.path.endsWith('.js')))(
    'the built "$subpath" entry loads',
    async ({ path }) => {
      const mod = (await import(`${root}/${path}`)) as Record<string, unknown>
      expect(Object.keys(mod).length).toBeGreaterThan(0)
    },
  )

  it('the built entry exports the public API', async () => {
    const mod = (await import(`${root}/dist/index.js`)) as Record<string, unknown>
    for (const name of ['outbox', 'createOutbox', 'OutboxError', 'isOutboxError', 'toJsonSafe']) {
      expect(mod, `dist/index.js lacks ${name}`).toHaveProperty(name)
    }
  })

  it('the sql entry returns the shipped migration and model, byte for byte', async () => {
    const sql = (await import(`${root}/dist/sql/index.js`)) as {
      outboxMigrationSql(): string
      outboxModelPrisma(): string
    }
    // Every migration folder, in order, joined by a newline.
    const folders = readdirSync(`${root}/prisma/migrations`, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()
    expect(folders.length).toBeGreaterThan(1)
    expect(sql.outboxMigrationSql()).toBe(
      folders.map((f) => readFileSync(`${root}/prisma/migrations/${f}/migration.sql`, 'utf8')).join('\n'),
    )
    expect(sql.outboxModelPrisma()).toBe(readFileSync(`${root}/prisma/outbox.prisma`, 'utf8'))
  })

  it('the sql entry reads no file at run time, so bundles work', () => {
    const source = readFileSync(`${root}/dist/sql/index.js`, 'utf8')
    expect(source).not.toMatch(/node:fs|readFile/)
  })
})
