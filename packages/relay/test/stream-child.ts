/**
 * `outbox-relay <args>` from the TypeScript source, for tests that run the CLI as a child process
 * (and kill it).
 */
import { run } from '../src/cli/main.js'

process.exitCode = await run(process.argv.slice(2))
