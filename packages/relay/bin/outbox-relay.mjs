#!/usr/bin/env node
// outbox-relay: serve | drain | watch. See the package README; `outbox-relay --help` for flags.
// Runs the compiled CLI (dist/). In a source checkout without a build it falls back to the
// TypeScript source, which works under a TypeScript loader: `node --import tsx bin/outbox-relay.mjs`.
let cli
try {
  cli = await import('../dist/cli/main.js')
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/cli/main.js'))
    throw error
  try {
    cli = await import('../src/cli/main.ts')
  } catch {
    console.error('outbox-relay: the package is not built: run `npm run build -w @prisma-outbox/relay` first')
    process.exit(2)
  }
}
const code = await cli.run(process.argv.slice(2))
process.exitCode = code
// Exit even if a library left a handle open (the result is already written).
setTimeout(() => process.exit(code), 2_000).unref()
