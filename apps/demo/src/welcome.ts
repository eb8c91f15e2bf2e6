/**
 * What `npm run demo` prints once it runs: the URLs and `curl` lines to try. Every line can be
 * pasted as it is, any number of times: each run creates an employee with an email of its own, and
 * later lines use the id the first one stored in `$id` (bash or zsh).
 * @module
 */

/** The `curl` lines of the banner, in order (bash or zsh). */
export function tryCommands(url: string, relayToken: string): string[] {
  const auth = `-H 'Authorization: Bearer ${relayToken}'`
  const json = `-H 'content-type: application/json'`
  return [
    // $RANDOM$RANDOM: a new email each time the line runs, so a second run does not hit the unique email.
    `r=$(curl -sS --fail-with-body -X POST ${url}/employees ${json} -d '{"email":"ada-'$RANDOM$RANDOM'@example.com","name":"Ada Lovelace","title":"Engineer"}'); echo "$r"; id=$(echo "$r" | sed -n 's/.*"id":"\\([^"]*\\)".*/\\1/p')`,
    // The directory follows through Kafka, a drain interval or so later.
    `sleep 1; curl -sS --fail-with-body ${url}/directory; echo`,
    `curl -sS --fail-with-body -X PATCH ${url}/employees/$id ${json} -d '{"title":"Chief Engineer"}'; echo`,
    `curl -sS --fail-with-body -X DELETE ${url}/employees/$id -o /dev/null -w '%{http_code}\\n'`,
    `curl -sS --fail-with-body ${url}/outbox; echo`,
    `curl -sS --fail-with-body -X POST ${url}/outbox/drain ${auth}; echo`,
    `curl -sS --fail-with-body ${url}/outbox/stats ${auth}; echo`,
  ]
}

/** How to see a request's whole trace, given where spans go (`DemoTracing.exportsTo`). */
export function tracingHint(exportsTo: string | undefined): string {
  if (exportsTo === undefined)
    return 'each request prints its trace id; to see whole traces (request → write → relay → Kafka → directory),\n  run with OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 (a collector or Jaeger) or OTEL_TRACES_EXPORTER=console'
  return `each request prints its trace id; whole traces (request → write → relay → Kafka → directory) go to ${exportsTo}`
}

/** The banner printed once the demo is up. */
export function welcome(
  url: string,
  relayToken: string,
  drainIntervalMs: number,
  exportsTo?: string | undefined,
): string {
  return `
prisma-outbox demo running on ${url}

  HR service     ${url}/employees
  directory      ${url}/directory   (kept up to date from Kafka through the inbox)
  relay          ${url}/outbox      (drained every ${drainIntervalMs} ms in process; also callable by cron)

Tracing: ${tracingHint(exportsTo)}

Try (paste the lines as they are, as often as you like):
${tryCommands(url, relayToken)
  .map((line) => `  ${line}`)
  .join('\n')}

Ctrl-C stops the demo (and the database and broker it started).
`
}
