/**
 * Builds `worker.ts` the way a Worker is deployed (one ES module, Node built-ins left to the
 * runtime's `nodejs_compat`) and runs it in workerd through Miniflare.
 */
import { builtinModules } from 'node:module'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { Miniflare } from 'miniflare'

const ENTRY = fileURLToPath(new URL('./worker.ts', import.meta.url))

/** The Worker as one ES module. `pg` resolves to its `cloudflare:sockets` transport (the `workerd` condition). */
export async function bundleWorker(): Promise<string> {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*', 'node:*', ...builtinModules],
    // pg is CommonJS: its require() of Node built-ins goes to nodejs_compat's `node:module`.
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire('/worker.js');",
    },
    logLevel: 'silent',
  })
  const [file] = result.outputFiles
  if (!file) throw new Error('esbuild produced no output for the worker')
  return file.text
}

export interface WorkerBindings {
  DATABASE_URL: string
  KAFKA_REST_URL: string
  KAFKA_CLUSTER_ID: string
  RELAY_TOKEN: string
}

/** Starts workerd with the Worker; `dispose()` stops it. */
export function startWorker(script: string, bindings: WorkerBindings): Miniflare {
  return new Miniflare({
    modules: true,
    script,
    compatibilityDate: '2025-09-01',
    compatibilityFlags: ['nodejs_compat'],
    bindings: { ...bindings },
  })
}
