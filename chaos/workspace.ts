/**
 * Where one fault-suite run keeps its state and which ports its private services take, so that
 * runs on the same machine never meet: a fresh folder and free ports unless told otherwise, and a
 * folder another live run owns is refused rather than wiped.
 * @module
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '@prisma-outbox/devkit'

/** The state folder of one run. */
export interface Workspace {
  dir: string
  /** True when this run made the folder (it then removes the services' data at the end). */
  fresh: boolean
  /** Removes the services' data (a fresh folder) and the owner mark; logs and reports stay. */
  release(): void
}

const OWNER_FILE = 'owner.pid'

/** The pid of a live fault-suite process that owns `dir`, if any (not this process). */
function liveOwner(dir: string): number | undefined {
  const file = join(dir, OWNER_FILE)
  if (!existsSync(file)) return undefined
  const pid = Number(readFileSync(file, 'utf8').trim())
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('chaos') ? pid : undefined
  } catch {
    return undefined // not running
  }
}

/**
 * `explicit` (`CHAOS_DATA_DIR`) when given and no live run owns it, else a fresh folder under the
 * OS temp dir. Readable by all, because as root the embedded PostgreSQL runs as the OS user
 * `postgres`, which must reach its data dir inside.
 * @throws Error naming the owning process when another run still uses `explicit`
 */
export function takeWorkspace(explicit: string | undefined): Workspace {
  const fresh = explicit === undefined || explicit === ''
  const dir = fresh ? mkdtempSync(join(tmpdir(), 'prisma-outbox-chaos-')) : explicit
  if (!fresh) {
    const owner = liveOwner(dir)
    if (owner !== undefined)
      throw new Error(
        `CHAOS_DATA_DIR ${dir} belongs to a fault-suite run still going (pid ${owner}); wait for it, pick another CHAOS_DATA_DIR, or leave it unset for a fresh folder`,
      )
    mkdirSync(dir, { recursive: true })
  }
  chmodSync(dir, 0o755)
  writeFileSync(join(dir, OWNER_FILE), String(process.pid))
  return {
    dir,
    fresh,
    release() {
      if (fresh) for (const part of ['pg', 'kafka']) rmSync(join(dir, part), { recursive: true, force: true })
      rmSync(join(dir, OWNER_FILE), { force: true })
    },
  }
}

/** The private services' ports: the variable's value when set, else one the OS says is free. */
export async function choosePorts(env: Record<string, string | undefined>) {
  const port = async (name: string): Promise<number> => {
    const value = env[name]
    if (value === undefined || value === '') return freePort()
    const n = Number(value)
    if (!Number.isInteger(n) || n < 1 || n > 65_535)
      throw new Error(`${name} must be a port number, got "${value}"`)
    return n
  }
  return {
    pg: await port('CHAOS_PG_PORT'),
    kafka: await port('CHAOS_KAFKA_PORT'),
    controller: await port('CHAOS_KAFKA_CONTROLLER_PORT'),
    http: await port('CHAOS_HTTP_PORT'),
  }
}
