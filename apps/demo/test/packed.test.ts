/**
 * The packages as a user gets them: `npm pack` each published package, install the tarballs into
 * an app outside the monorepo, run `prisma generate` there (with the packed generator) and compile
 * the app under the strictest common compiler flags, library declarations included
 * (`skipLibCheck: false`). Needs the packages built (turbo's `^build` does it before this test).
 */
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const FIXTURE = fileURLToPath(new URL('./packed-app/', import.meta.url))
const PUBLISHED = ['extension', 'relay', 'consumer'] as const
const require = createRequire(import.meta.url)

/** The version the workspace has installed, so npm finds it in its cache. */
const installed = (name: string) =>
  (JSON.parse(readFileSync(join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string })
    .version

interface PackResult {
  filename: string
  files: { path: string }[]
}

let work: string
let app: string
const packed = new Map<string, PackResult>()

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'prisma-outbox-packed-'))
  app = join(work, 'app')
  for (const name of PUBLISHED) {
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: join(REPO, 'packages', name),
    })
    const [result] = JSON.parse(stdout) as PackResult[]
    if (!result) throw new Error(`npm pack of packages/${name} printed no result`)
    packed.set(name, result)
  }
  mkdirSync(join(app, 'prisma'), { recursive: true })
  cpSync(join(FIXTURE, 'src'), join(app, 'src'), { recursive: true })
  cpSync(join(FIXTURE, 'tsconfig.json'), join(app, 'tsconfig.json'))
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'packed-app', private: true, type: 'module' }),
  )
  const tarballs = PUBLISHED.map((name) => join(work, packed.get(name)?.filename ?? ''))
  const thirdParty = ['@prisma/client', '@prisma/adapter-pg', 'kafkajs', '@types/node'].map(
    (name) => `${name}@${installed(name)}`,
  )
  await run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      ...tarballs,
      ...thirdParty,
    ],
    { cwd: app, maxBuffer: 10 * 1024 * 1024 },
  )
  // The models as the packages ship them, after the app's own head.
  const schema = [
    readFileSync(join(FIXTURE, 'schema-head.prisma'), 'utf8'),
    readFileSync(join(app, 'node_modules/@prisma-outbox/extension/prisma/outbox.prisma'), 'utf8'),
    readFileSync(join(app, 'node_modules/@prisma-outbox/consumer/prisma/inbox.prisma'), 'utf8'),
  ].join('\n')
  writeFileSync(join(app, 'prisma/schema.prisma'), schema)
  await run(
    process.execPath,
    [require.resolve('prisma/build/index.js'), 'generate', '--schema', 'prisma/schema.prisma'],
    {
      cwd: app,
      env: {
        ...process.env,
        // The generator's bin comes from the installed tarball, as `npx prisma generate` finds it.
        PATH: `${join(app, 'node_modules/.bin')}:${process.env.PATH ?? ''}`,
        PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? '/bin/false',
      },
    },
  )
}, 240_000)

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('the packed packages', () => {
  it.each(PUBLISHED)('@prisma-outbox/%s ships its LICENSE and README, and no test files', (name) => {
    const files = (packed.get(name)?.files ?? []).map((f) => f.path)
    expect(files).toContain('LICENSE')
    expect(files).toContain('package.json')
    expect(files.filter((f) => /\.test(-d)?\.|(^|\/)test\//.test(f))).toEqual([])
    expect(files.some((f) => f.startsWith('dist/') && f.endsWith('.d.ts'))).toBe(true)
  })

  it('compile into an app outside the monorepo under the strictest common flags', async () => {
    const tsconfig = JSON.parse(readFileSync(join(app, 'tsconfig.json'), 'utf8')) as {
      compilerOptions: Record<string, unknown>
    }
    expect(tsconfig.compilerOptions).toMatchObject({
      strict: true,
      exactOptionalPropertyTypes: true,
      noPropertyAccessFromIndexSignature: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: false,
    })
    const tsc = require.resolve('typescript/bin/tsc')
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app }).then(
      () => '',
      (error: { stdout?: string; message: string }) => error.stdout || error.message,
    )
    expect(result).toBe('')
  }, 120_000)

  it('resolve their types to the built declarations', () => {
    for (const name of PUBLISHED) {
      const pkg = JSON.parse(
        readFileSync(join(app, 'node_modules/@prisma-outbox', name, 'package.json'), 'utf8'),
      ) as { exports: Record<string, string | { types?: string }> }
      for (const [subpath, target] of Object.entries(pkg.exports)) {
        if (typeof target === 'string') continue
        expect(target.types, `${name} exports["${subpath}"].types`).toMatch(/^\.\/dist\/.*\.d\.ts$/)
      }
    }
    expect(dirname(app)).not.toContain(REPO)
  })
})
