/**
 * Help texts of the `outbox-relay` commands, and the list of commands for suggestions.
 * @module
 */

/** Every command of the CLI, for `--help` and "did you mean". */
export const ALL_COMMANDS = ['serve', 'drain', 'watch', 'stream', 'stats', 'dead', 'purge'] as const
export type AnyCommand = (typeof ALL_COMMANDS)[number]

const EXIT_CODES = `exit codes: 0 done, 1 failed (see stderr; drain: rows left, retried or dead),
  2 bad usage or configuration (nothing was attempted), 130/143 stopped by SIGINT/SIGTERM`

const RETENTION_ENV = `  RELAY_RETENTION             published rows older than this are deleted (default 7d; 0/off keeps them)
  RELAY_DEAD_RETENTION        dead rows that died longer ago are deleted (default off: kept)
  RELAY_RETENTION_INTERVAL    time between purges of serve, watch and stream (default 10m)
  RELAY_RETENTION_BATCH_SIZE  rows per DELETE (default 1000)`

const DRAIN_FLAGS = `  --max-events <n>   claim at most n rows per drain
  --budget-ms <ms>   stop draining before this much time (default DRAIN_MAX_BUDGET_MS)
  --topics <a,b>     only these topics`

/** `outbox-relay <command> --help`. */
export const COMMAND_HELP: Record<Exclude<AnyCommand, 'stream'>, string> = {
  serve: `usage: outbox-relay serve [--port <port>]

Runs the HTTP API until SIGINT/SIGTERM: POST /drain, GET /health, /stats, /metrics, /dead,
/dead/{id}, POST /dead/retry, /dead/discard, /purge, GET /openapi.json. Purges old rows every
RELAY_RETENTION_INTERVAL.

flags:
  --port <port>      listen port (default PORT or 3000)
  -h, --help         this text

environment: DATABASE_URL, KAFKA_*, RELAY_TOKEN and/or RELAY_WEBHOOK_SECRET (or RELAY_AUTH=none),
  HOST, PORT, OUTBOX_TABLE, DRAIN_*, DEAD_LETTER_POLICY, RELAY_PUBLISHED_ROWS, RELAY_ID,
  DB_PREPARED_STATEMENTS (see the README), and
${RETENTION_ENV}

${EXIT_CODES}
`,
  drain: `usage: outbox-relay drain [--max-events <n>] [--budget-ms <ms>] [--topics <a,b>] [--quiet]

Drains once and exits: for cron. Prints the result as JSON on stdout.

flags:
${DRAIN_FLAGS}
  --quiet            no progress output
  -h, --help         this text

environment: DATABASE_URL, KAFKA_*, OUTBOX_TABLE, DRAIN_*, DEAD_LETTER_POLICY, RELAY_PUBLISHED_ROWS, RELAY_ID,
  DB_PREPARED_STATEMENTS

exit codes: 0 everything due was published, 1 failures, dead rows or rows left (run again),
  2 bad configuration, 130/143 stopped by SIGINT/SIGTERM after the batch in flight
`,
  watch: `usage: outbox-relay watch [--poll-ms <ms>] [--max-events <n>] [--budget-ms <ms>] [--topics <a,b>] [--quiet]

LISTENs for new rows and drains at once (polling fallback), until SIGINT/SIGTERM. Purges old
rows every RELAY_RETENTION_INTERVAL.

flags:
  --poll-ms <ms>     polling fallback interval (default WATCH_POLL_MS or 5000)
${DRAIN_FLAGS}
  --quiet            no progress output
  -h, --help         this text

environment: DATABASE_URL, KAFKA_*, OUTBOX_TABLE, DRAIN_*, DEAD_LETTER_POLICY, RELAY_PUBLISHED_ROWS, RELAY_ID,
  DB_PREPARED_STATEMENTS, WATCH_POLL_MS, WATCH_DEBOUNCE_MS, and
${RETENTION_ENV}

${EXIT_CODES}
`,
  stats: `usage: outbox-relay stats

Prints the backlog as JSON: pending, due, in flight, dead, oldest pending age, per topic (the
body of GET /stats). Needs only the database.

environment: DATABASE_URL, OUTBOX_TABLE

${EXIT_CODES}
`,
  dead: `usage: outbox-relay dead list [--topic <t>] [--limit <n>] [--max-bytes <n>] [--cursor <c>] [--payload]
       outbox-relay dead show <id>
       outbox-relay dead retry <id>... | --topic <t> --yes | --all --yes
       outbox-relay dead discard <id>... | --topic <t> --yes | --all --yes

Dead rows: events that will not be published until an operator acts. Output is JSON.
  list     a page, oldest first, at most --limit rows (default 50) and --max-bytes bytes
           (default 262144; a larger row comes alone); payloads only with --payload.
           Prints { items, nextCursor }: pass nextCursor as --cursor for the next page.
  show     one dead row with its payload
  retry    set rows back to pending (attempts 0, due now): they are published by the next drain
  discard  delete rows for good (they are never published)
Acting on a whole topic or on every dead row needs --yes.

flags:
  --topic <t>        only this topic (list), or every dead row of it (retry, discard)
  --all              every dead row (retry, discard)
  --yes              confirm --topic or --all for retry and discard
  --limit <n>        list: rows per page, 1 to 500
  --max-bytes <n>    list: bytes per page, 1024 to 16777216
  --cursor <c>       list: nextCursor of the previous page
  --payload          list: include payloads
  -h, --help         this text

environment: DATABASE_URL, OUTBOX_TABLE

${EXIT_CODES}; show: 1 when the id is not a dead row
`,
  purge: `usage: outbox-relay purge [--older-than <duration>] [--dead-older-than <duration>] [--dry-run]

Deletes published rows older than --older-than (default RELAY_RETENTION, 7d) and dead rows that
died longer ago than --dead-older-than (default RELAY_DEAD_RETENTION: kept), in batches of
RELAY_RETENTION_BATCH_SIZE rows, each its own short transaction. Only one relay purges at a
time: when another one is purging, this one stops at once ("busy": true). Prints the result as
JSON. Durations: 30s, 10m, 12h, 7d, 2w.

flags:
  --older-than <d>        published rows older than this
  --dead-older-than <d>   dead rows too, past this window
  --dry-run               count what would be deleted, delete nothing
  -h, --help              this text

environment: DATABASE_URL, OUTBOX_TABLE, and
${RETENTION_ENV}

${EXIT_CODES}
`,
}
