import { describe, expect, it } from 'vitest'
import { drainExitCode, EXIT, main, version } from './main.js'

const io = () => {
  const out: string[] = []
  const err: string[] = []
  return {
    out,
    err,
    io: {
      env: {},
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t) },
    },
  }
}

describe('drainExitCode', () => {
  it.each([
    [{ published: 10, retried: 0, dead: 0, remaining: 0 }, EXIT.OK],
    [{ published: 0, retried: 0, dead: 0, remaining: 0 }, EXIT.OK],
    [{ published: 9, retried: 1, dead: 0, remaining: 0 }, EXIT.FAILED],
    [{ published: 9, retried: 0, dead: 1, remaining: 0 }, EXIT.FAILED],
    [{ published: 9, retried: 0, dead: 0, remaining: 3 }, EXIT.FAILED],
  ])('Should map %j to %i', (result, code) => {
    expect(drainExitCode({ ...result, durationMs: 1 })).toBe(code)
  })
})

describe('main', () => {
  it('Should print usage for --help (0) and without arguments (2)', async () => {
    const a = io()
    expect(await main(['--help'], a.io)).toBe(0)
    expect(a.out.join('')).toMatch(/^usage: outbox-relay <command>/)
    const b = io()
    expect(await main([], b.io)).toBe(2)
  })

  it('Should return 2 and name the variable for a bad environment', async () => {
    const a = io()
    expect(await main(['watch'], a.io)).toBe(2)
    expect(a.err.join('')).toMatch(/DATABASE_URL: is required/)
  })

  it('Should exit 2, not 1, for a bad table name, without a ZodError dump', async () => {
    const a = io()
    const env = {
      DATABASE_URL: 'postgresql://x@127.0.0.1:1/x',
      KAFKA_BROKERS: '127.0.0.1:1',
      OUTBOX_TABLE: 'a.b.c',
    }
    expect(await main(['drain'], { ...a.io, env })).toBe(EXIT.CONFIG)
    expect(a.err.join('')).toMatch(/OUTBOX_TABLE: must be "table" or "schema.table"/)
    expect(a.err.join('')).not.toMatch(/ZodError/)
  })
})

describe('help, version and suggestions', () => {
  it.each(['serve', 'drain', 'watch', 'stats', 'dead', 'purge'])(
    'Should print the own help of %s for --help, -h and help <command>, exit 0',
    async (command) => {
      for (const argv of [
        [command, '--help'],
        [command, '-h'],
        ['help', command],
      ]) {
        const a = io()
        expect(await main(argv, a.io)).toBe(0)
        expect(a.out.join('')).toMatch(new RegExp(`^usage: outbox-relay ${command}`))
        expect(a.out.join('')).toMatch(/exit codes:/)
      }
    },
  )

  it('Should print the version for --version, -v and version', async () => {
    for (const flag of ['--version', '-v', 'version']) {
      const a = io()
      expect(await main([flag], a.io)).toBe(0)
      expect(a.out.join('')).toBe(`${version()}\n`)
    }
    expect(version()).toMatch(/^outbox-relay \d+\.\d+\.\d+/)
  })

  it('Should suggest a command and a flag for typos, exit 2', async () => {
    const a = io()
    expect(await main(['purg'], a.io)).toBe(EXIT.CONFIG)
    expect(a.err.join('')).toMatch(/unknown command "purg"; did you mean purge\?/)
    const b = io()
    expect(await main(['purge', '--older_than', '7d'], b.io)).toBe(EXIT.CONFIG)
    expect(b.err.join('')).toMatch(/unknown flag --older_than; did you mean --older-than\?/)
    const c = io()
    expect(await main(['dead', 'lst'], c.io)).toBe(EXIT.CONFIG)
    expect(c.err.join('')).toMatch(/unknown action "lst"; did you mean list\?/)
  })

  it('Should refuse bulk dead actions without --yes, and bad values, before connecting (exit 2)', async () => {
    const env = { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' }
    for (const [argv, message] of [
      [['dead', 'retry', '--all'], /retry would touch every dead row: add --yes/],
      [
        ['dead', 'discard', '--topic', 'orders'],
        /discard would touch every dead row of topic "orders": add --yes/,
      ],
      [['dead', 'retry'], /give ids, or --topic <t>, or --all/],
      [['dead', 'retry', 'abc'], /must be a UUID/],
      [['dead', 'list', '--limit', '0'], /--limit: must be between 1 and 500/],
      [['purge', '--older-than', '7'], /--older-than: "7" is not a duration/],
      [['stats', 'now'], /unexpected argument "now"/],
    ] as const) {
      const a = io()
      expect(await main([...argv], { ...a.io, env }), argv.join(' ')).toBe(EXIT.CONFIG)
      expect(a.err.join('')).toMatch(message)
    }
  })

  it('Should name DATABASE_URL for the database-only commands, and never ask for KAFKA_BROKERS', async () => {
    const a = io()
    expect(await main(['stats'], a.io)).toBe(EXIT.CONFIG)
    expect(a.err.join('')).toMatch(/DATABASE_URL: is required/)
    expect(a.err.join('')).not.toMatch(/KAFKA_BROKERS/)
  })
})
