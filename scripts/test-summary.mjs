#!/usr/bin/env node
// Adds up the vitest summaries of every package in a `npm test` log and prints one closing line:
// "vitest: N passed, N failed[, N skipped]". Exits 1 when a summary reports failures or none ran.
import { readFileSync } from 'node:fs'

const file = process.argv[2]
if (!file) {
  console.error('usage: node scripts/test-summary.mjs <npm-test-log>')
  process.exit(2)
}
const ansiColour = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g')
const text = readFileSync(file, 'utf8').replace(ansiColour, '')
const totals = { passed: 0, failed: 0, skipped: 0 }
let summaries = 0
for (const line of text.split('\n')) {
  const match = /^\s*(?:\S+:test:\s+)?Tests\s+(.*)\(\d+\)\s*$/.exec(line)
  if (!match) continue
  summaries++
  for (const [, n, kind] of match[1].matchAll(/(\d+) (passed|failed|skipped|todo)/g)) {
    totals[kind === 'todo' ? 'skipped' : kind] += Number(n)
  }
}
const skipped = totals.skipped > 0 ? `, ${totals.skipped} skipped` : ''
console.log(`vitest: ${totals.passed} passed, ${totals.failed} failed${skipped}`)
process.exit(summaries === 0 || totals.failed > 0 ? 1 : 0)
