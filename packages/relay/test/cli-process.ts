/**
 * The `outbox-relay` CLI as a child process, for the integration tests: the TypeScript sources run
 * through the tsx loader (so a stale `dist/` cannot hide a change) with the same lines as the bin,
 * or the bin itself.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../bin/outbox-relay.mjs', import.meta.url))
const CWD = fileURLToPath(new URL('..', import.meta.url))
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))

/** How a child ended. */
export interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** What bin/outbox-relay.mjs does, on the sources. */
const FROM_SOURCE = `const { run } = await import(${JSON.stringify(MAIN)})
const code = await run(process.argv.slice(1))
process.exitCode = code
setTimeout(() => process.exit(code), 2000).unref()`

/** Starts `outbox-relay <args>` with exactly `env` (plus PATH). */
export function start(
  args: string[],
  env: Record<string, string | undefined>,
  options: { bin?: boolean } = {},
): { child: ChildProcess; done: Promise<Run>; output(): string } {
  const entry = options.bin ? [BIN] : ['--input-type=module', '--eval', FROM_SOURCE, '--']
  const child = spawn(process.execPath, ['--import', 'tsx', ...entry, ...args], {
    cwd: CWD,
    // Only what we pass: the test's own DATABASE_URL etc. must not leak in.
    env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  )
  return { child, done, output: () => stdout + stderr }
}
