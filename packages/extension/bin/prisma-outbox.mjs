#!/usr/bin/env node
// prisma-outbox sql outbox|inbox|capture [--rerunnable] [--apply --url ...]: the DDL for other
// migration tools. See the package README; `prisma-outbox --help` for flags.
import { sqlMain } from '../dist/cli/sql-main.js'

process.exitCode = await sqlMain(process.argv.slice(2))
