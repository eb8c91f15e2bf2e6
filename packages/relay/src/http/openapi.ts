/**
 * The OpenAPI 3.1 document of the relay's HTTP API, generated from the zod schemas that
 * validate the requests (`z.toJSONSchema`), so the document and the code cannot disagree.
 * @module
 */
import { z } from 'zod'
import { SIGNATURE_HEADER } from './auth.js'
import { apiSchemas, deadQuerySchema } from './schemas.js'

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` })
const json = (id: string) => ({ 'application/json': { schema: ref(id) } })
const error = (description: string) => ({ description, content: json('Error') })
const authErrors = {
  '401': error('missing, wrong, expired or replayed credentials'),
  '503': error('the database (or broker) is unavailable'),
}

/** Component schemas without the per-schema `$schema`/`$id` that OpenAPI does not want. */
function componentSchemas(): Record<string, unknown> {
  const { schemas } = z.toJSONSchema(apiSchemas, { uri: (id) => `#/components/schemas/${id}`, io: 'input' })
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $schema: _s, $id: _i, ...rest } = schema as Record<string, unknown>
      return [id, rest]
    }),
  )
}

function queryParameters(): unknown[] {
  const schema = z.toJSONSchema(deadQuerySchema, { io: 'input' }) as {
    properties: Record<string, { description?: string }>
  }
  return Object.entries(schema.properties).map(([name, s]) => {
    const { description, ...rest } = s
    return { name, in: 'query', required: false, description, schema: rest }
  })
}

/** A POST route that takes a JSON body: schema ids of its request and result, what its 200 and 400 mean. */
interface PostOperation {
  operationId: string
  summary: string
  request: string
  required: boolean
  result: string
  done: string
  invalid: string
}

function post(op: PostOperation) {
  return {
    post: {
      operationId: op.operationId,
      summary: op.summary,
      requestBody: { required: op.required, content: json(op.request) },
      responses: {
        '200': { description: op.done, content: json(op.result) },
        '400': error(op.invalid),
        '413': error('body too large'),
        ...authErrors,
      },
    },
  }
}

/** `/drain` and the read-only views: health, stats, metrics. */
function serviceOperations(): Record<string, unknown> {
  return {
    '/drain': post({
      operationId: 'drain',
      summary: 'Publish due outbox rows, stopping before the time budget',
      request: 'DrainRequest',
      required: false,
      result: 'DrainResult',
      done: 'what the drain did',
      invalid: 'malformed JSON or an invalid field (named in the message)',
    }),
    '/health': {
      get: {
        operationId: 'health',
        summary: 'Database and broker reachability (no auth)',
        security: [],
        responses: {
          '200': { description: 'everything reachable', content: json('Health') },
          '503': { description: 'something is down; `checks` names it', content: json('Health') },
        },
      },
    },
    '/stats': {
      get: {
        operationId: 'stats',
        summary: 'Backlog: pending, due, in flight, dead, oldest pending age, per topic',
        responses: { '200': { description: 'backlog statistics', content: json('Stats') }, ...authErrors },
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        summary: 'Prometheus text exposition',
        responses: {
          '200': {
            description: 'metrics',
            content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } },
          },
          ...authErrors,
        },
      },
    },
  }
}

/** `POST /dead/retry` or `POST /dead/discard`: a dead selection in, a count out. */
function deadAction(operationId: string, summary: string, done: string, result: string) {
  return post({
    operationId,
    summary,
    request: 'DeadSelection',
    required: true,
    result,
    done,
    invalid: 'malformed JSON or an invalid field',
  })
}

/** The dead-letter routes: list, one row, retry, discard. */
function deadLetterOperations(): Record<string, unknown> {
  return {
    '/dead': {
      get: {
        operationId: 'listDead',
        summary:
          'Dead-letter rows with their last error, oldest first, paged by cursor, bounded in rows and bytes',
        parameters: queryParameters(),
        responses: {
          '200': { description: 'a page of dead rows', content: json('DeadPage') },
          '400': error('invalid query parameter'),
          ...authErrors,
        },
      },
    },
    '/dead/{id}': {
      get: {
        operationId: 'getDead',
        summary: 'One dead row, with its payload',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
        responses: {
          '200': { description: 'the dead row', content: json('DeadEvent') },
          '400': error('the id is not a UUID'),
          '404': error('no dead row with this id'),
          ...authErrors,
        },
      },
    },
    '/dead/retry': deadAction(
      'retryDead',
      'Set dead rows back to pending (attempts 0, due now): some ids, some topics, or all',
      'how many rows were revived',
      'RetryResult',
    ),
    '/dead/discard': deadAction(
      'discardDead',
      'Delete dead rows for good: some ids, some topics, or all',
      'how many rows were deleted',
      'DiscardResult',
    ),
  }
}

/** `/purge` and this document. */
function maintenanceOperations(): Record<string, unknown> {
  return {
    '/purge': post({
      operationId: 'purge',
      summary: 'Delete old published rows (and old dead rows when asked), in bounded batches',
      request: 'PurgeRequest',
      required: false,
      result: 'PurgeResult',
      done: 'what the purge did',
      invalid: 'malformed JSON or an invalid field',
    }),
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'This document',
        responses: {
          '200': { description: 'OpenAPI 3.1 document', content: { 'application/json': {} } },
          ...authErrors,
        },
      },
    },
  }
}

/** Bearer token or webhook signature: either one is enough (see `relayAuth`). */
function securitySchemes() {
  return {
    bearerAuth: { type: 'http', scheme: 'bearer', description: 'RELAY_TOKEN (at least 32 characters)' },
    webhookSignature: {
      type: 'apiKey',
      in: 'header',
      name: SIGNATURE_HEADER,
      description: 't=<unix seconds>,v1=<hex HMAC-SHA256(RELAY_WEBHOOK_SECRET, "<t>.<raw body>")>',
    },
  }
}

/**
 * Builds the document. Every endpoint but `/health` requires one of the two security schemes.
 *
 * @param [options.serverUrl] - where the app is mounted, e.g. `https://api.example.com/outbox`
 * @example
 * const doc = relayOpenApiDocument({ serverUrl: 'https://api.example.com/outbox' })
 */
export function relayOpenApiDocument(
  options: { serverUrl?: string | undefined } = {},
): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'prisma-outbox relay',
      version: '0.1.0',
      description:
        'Drains the transactional outbox to Kafka. Authenticate with a bearer token or a webhook signature ' +
        `(${SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>, 5-minute window, single use).`,
    },
    ...(options.serverUrl ? { servers: [{ url: options.serverUrl }] } : {}),
    security: [{ bearerAuth: [] }, { webhookSignature: [] }],
    paths: { ...serviceOperations(), ...deadLetterOperations(), ...maintenanceOperations() },
    components: { schemas: componentSchemas(), securitySchemes: securitySchemes() },
  }
}
