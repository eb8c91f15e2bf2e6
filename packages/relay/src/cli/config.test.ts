import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig, wantsHelp } from './config.js'

const TOKEN = 'r'.repeat(32)
const base = { DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/app', KAFKA_BROKERS: '127.0.0.1:9092' }

function error(argv: string[], env: Record<string, string | undefined>): string {
  try {
    loadConfig(argv, env)
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return (e as Error).message
  }
  throw new Error('expected a ConfigError')
}

describe('loadConfig', () => {
  it.each([
    [['drain', '--budget-ms', '0'], {}, /--budget-ms: must be between 1 and 86400000/],
    [['drain'], { DRAIN_BATCH_SIZE: '0' }, /DRAIN_BATCH_SIZE: must be between 1 and 10000/],
    [['drain'], { PORT: '70000' }, /PORT: must be between 0 and 65535/],
    [['drain'], { DRAIN_BATCH_SIZE: '1.5' }, /DRAIN_BATCH_SIZE: must be an integer/],
    [['drain'], { WATCH_POLL_MS: 'soon' }, /WATCH_POLL_MS: must be an integer/],
    [['drain'], { OUTBOX_TABLE: 'a.b.c' }, /OUTBOX_TABLE: must be "table" or "schema.table"/],
    [['drain'], { RELAY_TOKEN: `${TOKEN} ${TOKEN}` }, /RELAY_TOKEN: must not contain whitespace/],
    [
      ['drain'],
      { RELAY_WEBHOOK_SECRET: `${TOKEN}\t${TOKEN}` },
      /RELAY_WEBHOOK_SECRET: must not contain whitespace/,
    ],
    [['drain'], { RELAY_TOKEN: ` ${'x'.repeat(20)}\n` }, /RELAY_TOKEN: must be at least 32 characters/],
    [['watch'], { RELAY_RETENTION: '7' }, /RELAY_RETENTION: "7" is not a duration.*or 0\/off/],
    [['watch'], { RELAY_DEAD_RETENTION: 'forever' }, /RELAY_DEAD_RETENTION: "forever" is not a duration/],
    [['watch'], { RELAY_RETENTION_INTERVAL: '10ms' }, /RELAY_RETENTION_INTERVAL: must be at least 1000 ms/],
    [
      ['watch'],
      { RELAY_RETENTION_BATCH_SIZE: '0' },
      /RELAY_RETENTION_BATCH_SIZE: must be between 1 and 100000/,
    ],
    [['drian'], {}, /unknown command "drian"; did you mean drain\?/],
    [['drain', '--max-event', '3'], {}, /unknown flag --max-event; did you mean --max-events\?/],
  ])('Should name the problem of %j %j as a range/format error', (argv, env, message) => {
    expect(error(argv, { ...base, ...env })).toMatch(message)
  })

  it('Should default retention to 7 days for published rows, dead rows kept, every 10 minutes', () => {
    expect(loadConfig(['watch'], base).retention).toEqual({
      policy: { publishedMaxAgeMs: 604_800_000, deadMaxAgeMs: null, batchSize: 1_000 },
      intervalMs: 600_000,
    })
    const set = loadConfig(['watch'], {
      ...base,
      RELAY_RETENTION: 'off',
      RELAY_DEAD_RETENTION: '90d',
      RELAY_RETENTION_INTERVAL: '1h',
      RELAY_RETENTION_BATCH_SIZE: '200',
    }).retention
    expect(set).toEqual({
      policy: { publishedMaxAgeMs: null, deadMaxAgeMs: 7_776_000_000, batchSize: 200 },
      intervalMs: 3_600_000,
    })
  })

  it('Should trim the newline a mounted secret file ends with', () => {
    const config = loadConfig(['serve'], {
      ...base,
      RELAY_TOKEN: `${TOKEN}\n`,
      RELAY_WEBHOOK_SECRET: ` ${TOKEN}\r\n`,
    })
    expect(config.http.auth).toEqual({ token: TOKEN, webhookSecret: TOKEN })
  })

  it('Should keep the default lease well above the publisher send timeout', () => {
    const config = loadConfig(['drain'], base)
    expect(config.engine?.leaseMs).toBeGreaterThanOrEqual(4 * 15_000)
  })

  it('Should apply defaults', () => {
    const config = loadConfig(['drain'], base)
    expect(config).toMatchObject({
      command: 'drain',
      databaseUrl: base.DATABASE_URL,
      kafka: {
        client: 'kafkajs',
        clientId: 'outbox-relay',
        brokers: ['127.0.0.1:9092'],
        ssl: false,
        sasl: undefined,
      },
      engine: {
        table: 'outbox_event',
        batchSize: 500,
        maxAttempts: 10,
        leaseMs: 60_000,
        deadLetterPolicy: 'block-key',
        publishedRows: 'mark',
      },
      drain: { budgetMs: 25_000 },
      http: { port: 3000, host: '0.0.0.0', maxBudgetMs: 25_000 },
      watch: { pollMs: 5_000, debounceMs: 20 },
      quiet: false,
    })
    expect(config.engine).not.toHaveProperty('relayId')
  })

  it('Should read every variable and flag', () => {
    const config = loadConfig(
      [
        'watch',
        '--max-events',
        '100',
        '--budget-ms',
        '5000',
        '--topics',
        'a, b',
        '--poll-ms',
        '60000',
        '--quiet',
      ],
      {
        ...base,
        KAFKA_BROKERS: 'k1:9092, k2:9093,[::1]:9094',
        KAFKA_CLIENT_ID: 'relay-x',
        RELAY_KAFKA_CLIENT: 'platformatic',
        KAFKA_SSL: 'true',
        KAFKA_SASL_MECHANISM: 'scram-sha-512',
        KAFKA_SASL_USERNAME: 'u',
        KAFKA_SASL_PASSWORD: 'p',
        KAFKA_TOPIC_PARTITIONS: '6',
        OUTBOX_TABLE: 'app.outbox_event',
        RELAY_ID: 'relay-1',
        DRAIN_BATCH_SIZE: '200',
        DRAIN_MAX_BUDGET_MS: '9000',
        DRAIN_MAX_ATTEMPTS: '3',
        DRAIN_LEASE_MS: '60000',
        DEAD_LETTER_POLICY: 'continue',
        RELAY_PUBLISHED_ROWS: 'delete',
        DB_PREPARED_STATEMENTS: 'false',
        WATCH_DEBOUNCE_MS: '0',
        RELAY_TRACING: 'yes',
        UNRELATED: 'ignored',
      },
    )
    expect(config.kafka).toEqual({
      client: 'platformatic',
      clientId: 'relay-x',
      brokers: ['k1:9092', 'k2:9093', '[::1]:9094'],
      ssl: true,
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
      numPartitions: 6,
    })
    expect(config.engine).toEqual({
      relayId: 'relay-1',
      table: 'app.outbox_event',
      batchSize: 200,
      maxAttempts: 3,
      leaseMs: 60_000,
      deadLetterPolicy: 'continue',
      publishedRows: 'delete',
      preparedStatements: false,
    })
    expect(loadConfig(['drain'], base).engine).not.toHaveProperty('preparedStatements')
    expect(error(['drain'], { ...base, DB_PREPARED_STATEMENTS: 'maybe' })).toMatch(
      /DB_PREPARED_STATEMENTS: must be true or false/,
    )
    expect(config.drain).toEqual({ maxEvents: 100, budgetMs: 5_000, topics: ['a', 'b'] })
    expect(config.watch).toEqual({ pollMs: 60_000, debounceMs: 0 })
    expect(config.http.maxBudgetMs).toBe(9_000)
    expect(config.quiet).toBe(true)
    expect(config.tracing).toBe(true)
    expect(loadConfig(['drain'], base).tracing).toBe(false)
    expect(error(['drain'], { ...base, RELAY_TRACING: 'on' })).toMatch(/RELAY_TRACING: must be true or false/)
  })

  it('Should need an auth choice for serve only', () => {
    expect(error(['serve'], base)).toMatch(/RELAY_TOKEN: is required for serve/)
    expect(loadConfig(['serve'], { ...base, RELAY_TOKEN: TOKEN }).http.auth).toEqual({
      token: TOKEN,
      webhookSecret: undefined,
    })
    expect(loadConfig(['serve'], { ...base, RELAY_WEBHOOK_SECRET: TOKEN }).http.auth).toEqual({
      token: undefined,
      webhookSecret: TOKEN,
    })
    expect(loadConfig(['serve', '--port', '0'], { ...base, RELAY_AUTH: 'none' }).http).toMatchObject({
      auth: 'none',
      port: 0,
    })
    expect(error(['serve'], { ...base, RELAY_AUTH: 'none', RELAY_TOKEN: TOKEN })).toMatch(
      /RELAY_AUTH: "none" contradicts/,
    )
  })

  it.each([
    ['DATABASE_URL missing', { DATABASE_URL: undefined }, /DATABASE_URL: is required/],
    ['DATABASE_URL empty', { DATABASE_URL: '  ' }, /DATABASE_URL: is required/],
    ['DATABASE_URL not postgres', { DATABASE_URL: 'mysql://x/y' }, /DATABASE_URL: must be a postgres/],
    ['KAFKA_BROKERS missing', { KAFKA_BROKERS: undefined }, /KAFKA_BROKERS: is required/],
    [
      'KAFKA_BROKERS without port',
      { KAFKA_BROKERS: 'kafka' },
      /KAFKA_BROKERS\.0: each broker must be host:port/,
    ],
    ['KAFKA_BROKERS only commas', { KAFKA_BROKERS: ',,' }, /KAFKA_BROKERS: must list at least one broker/],
    ['RELAY_TOKEN short', { RELAY_TOKEN: 'short' }, /RELAY_TOKEN: must be at least 32 characters/],
    [
      'RELAY_WEBHOOK_SECRET short',
      { RELAY_WEBHOOK_SECRET: 'short' },
      /RELAY_WEBHOOK_SECRET: must be at least 32/,
    ],
    ['RELAY_AUTH other', { RELAY_AUTH: 'off' }, /RELAY_AUTH: must be "none"/],
    ['PORT text', { PORT: 'http' }, /PORT:/],
    ['PORT too big', { PORT: '70000' }, /PORT:/],
    ['DRAIN_BATCH_SIZE zero', { DRAIN_BATCH_SIZE: '0' }, /DRAIN_BATCH_SIZE:/],
    ['DRAIN_BATCH_SIZE float', { DRAIN_BATCH_SIZE: '1.5' }, /DRAIN_BATCH_SIZE: must be an integer/],
    ['DRAIN_MAX_BUDGET_MS text', { DRAIN_MAX_BUDGET_MS: 'soon' }, /DRAIN_MAX_BUDGET_MS:/],
    ['WATCH_POLL_MS too small', { WATCH_POLL_MS: '1' }, /WATCH_POLL_MS:/],
    ['DEAD_LETTER_POLICY unknown', { DEAD_LETTER_POLICY: 'drop' }, /DEAD_LETTER_POLICY:/],
    [
      'RELAY_PUBLISHED_ROWS unknown',
      { RELAY_PUBLISHED_ROWS: 'purge' },
      /RELAY_PUBLISHED_ROWS: must be mark or delete/,
    ],
    ['KAFKA_SSL unknown', { KAFKA_SSL: 'maybe' }, /KAFKA_SSL: must be true or false/],
    [
      'SASL without password',
      { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' },
      /KAFKA_SASL_PASSWORD: is required/,
    ],
  ])('Should name the variable when %s', (_name, patch, message) => {
    expect(error(['drain'], { ...base, ...patch })).toMatch(message)
  })

  it('Should list every problem at once and never echo a value', () => {
    const message = error(['drain'], { DATABASE_URL: 'nope', RELAY_TOKEN: 'secret-but-short' })
    expect(message).toMatch(/DATABASE_URL/)
    expect(message).toMatch(/KAFKA_BROKERS/)
    expect(message).toMatch(/RELAY_TOKEN/)
    expect(message).not.toContain('secret-but-short')
  })

  it.each([
    [['drain', '--max-events', 'ten'], /--max-events/],
    [['drain', '--max-events', '0'], /--max-events/],
    [['drain', '--budget-ms', '-5'], /--budget-ms/],
    [['drain', '--topics', ','], /--topics: must list at least one topic/],
    [['drain', '--nope'], /unknown flag --nope \(see outbox-relay drain --help\)/],
    [['fly'], /unknown command "fly"/],
    [['drain', 'extra'], /unexpected argument "extra"/],
    [['--quiet'], /missing command/],
  ])('Should reject bad flags and commands: %j', (argv, message) => {
    expect(error(argv, base)).toMatch(message)
  })

  it('Should recognise help', () => {
    expect(wantsHelp([])).toBe(true)
    expect(wantsHelp(['drain', '--help'])).toBe(true)
    expect(wantsHelp(['drain'])).toBe(false)
  })
})
