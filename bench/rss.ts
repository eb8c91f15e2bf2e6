/**
 * Part 4: peak RSS of a relay process draining a large backlog. The relay runs as a child
 * process (`node bench/rss-child.mjs`, the built relay, no tsx); we sample its VmRSS from
 * /proc/<pid>/status every 100 ms and take its own VmHWM (kernel peak) at the end.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { benchKafka, fillBacklog, freshDatabase, freshTopic, log, progress, ROOT } from './lib.js'

export interface RssResult {
  rows: number
  batchSize: number
  ms: number
  eventsPerSec: number
  published: number
  readyRssMB: number
  peakRssMB: number
  sampledPeakRssMB: number
  fillMs: number
  /** RSS / V8 heap used at 10%, 50% and 100% of the drain (MB): does it plateau or keep growing? */
  timeline: { at: number; rssMB: number; heapMB: number }[]
}

function rssKB(pid: number): number | undefined {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  } catch {
    return undefined
  }
}

export interface ProfileEntry {
  name: string
  selfMs: number
  share: number
}

export interface RelayProfile {
  rows: number
  totalMs: number
  byPackage: ProfileEntry[]
  byFunction: ProfileEntry[]
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples: number[]
  timeDeltas: number[]
}

function packageOf(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)'
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm) return nm[1] as string
  if (url.includes('/packages/relay/')) return '@prisma-outbox/relay'
  if (url.startsWith('node:')) return 'node internals'
  return url.split('/').slice(-2).join('/')
}

/** Self time by package and by function of a V8 .cpuprofile (idle excluded). */
export function summarizeProfile(file: string, rows: number): RelayProfile {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000)
  }
  const byPackage = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let total = 0
  for (const node of profile.nodes) {
    const ms = self.get(node.id) ?? 0
    const { functionName, url, lineNumber } = node.callFrame
    if (ms === 0 || functionName === '(idle)') continue
    total += ms
    const pkg = packageOf(url, functionName)
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + ms)
    const where = url ? ` ${pkg}:${url.split('/').pop()}:${lineNumber + 1}` : ''
    const fname = `${functionName || '(anonymous)'}${where}`
    byFunction.set(fname, (byFunction.get(fname) ?? 0) + ms)
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, selfMs]) => ({ name, selfMs, share: selfMs / total }))
  return { rows, totalMs: total, byPackage: top(byPackage, 10), byFunction: top(byFunction, 15) }
}

export async function relayRss(options: {
  rows: number
  keys: number
  batchSize: number
  /** Run the relay child with `--cpu-prof` into this directory (the RSS then includes the profiler). */
  cpuProfDir?: string
}): Promise<RssResult> {
  const { rows, keys, batchSize } = options
  const db = await freshDatabase()
  try {
    const kafka = benchKafka()
    const topic = await freshTopic(kafka, 'rss')
    const fill = await fillBacklog(db, { rows, keys, topic, label: 'backlog (RSS)' })
    const flags = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : []
    const child = spawn(
      process.execPath,
      [...flags, `${ROOT}bench/rss-child.mjs`, db.url, String(batchSize)],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    let sampledMax = 0
    const sampler = setInterval(() => {
      const kb = child.pid ? rssKB(child.pid) : undefined
      if (kb && kb > sampledMax) sampledMax = kb
    }, 100)
    const report = progress(`relay process, batch ${batchSize}`, rows)
    let ready: { rssKB: number } | undefined
    let done: { published: number; ms: number; hwmKB: number; rssKB: number } | undefined
    const samples: RssResult['timeline'] = []
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      const msg = JSON.parse(line)
      if (msg.ready) ready = msg
      else if (msg.done) done = msg
      else {
        report(msg.published, `RSS ${Math.round(msg.rssKB / 1024)} MB, heap ${Math.round(msg.heapMB)} MB`)
        samples.push({ at: msg.published / rows, rssMB: msg.rssKB / 1024, heapMB: msg.heapMB })
      }
    })
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    clearInterval(sampler)
    if (code !== 0 || !done || !ready) throw new Error(`relay child exited with ${code}`)
    log(
      `  → peak RSS ${Math.round(done.hwmKB / 1024)} MB (after start: ${Math.round(ready.rssKB / 1024)} MB)`,
    )
    return {
      rows,
      batchSize,
      ms: done.ms,
      eventsPerSec: rows / (done.ms / 1000),
      published: done.published,
      readyRssMB: ready.rssKB / 1024,
      peakRssMB: done.hwmKB / 1024,
      sampledPeakRssMB: sampledMax / 1024,
      fillMs: fill.ms,
      timeline: [0.1, 0.5, 0.9]
        .map((q) => samples.find((x) => x.at >= q))
        .filter((x): x is RssResult['timeline'][number] => x !== undefined),
    }
  } finally {
    await db.drop()
  }
}
