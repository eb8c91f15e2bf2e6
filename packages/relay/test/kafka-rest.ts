/**
 * A recorded-contract stub of the Kafka REST produce API, forwarding to the real broker with
 * kafkajs (idempotent producer, acks = all), for tests of `FetchPublisher` from a runtime without
 * TCP access to Kafka. It speaks what `FetchPublisher` sends:
 * - v3 (Confluent REST Proxy, Confluent Cloud): `POST /v3/clusters/{cluster}/topics/{topic}/records`,
 *   one record `{ key: { type: 'STRING', data }, value: { type: 'BINARY', data: base64 },
 *   headers: [{ name, value: base64 }] }`, answered with the delivery report
 *   `{ error_code: 200, cluster_id, topic_name, partition_id, offset }`;
 * - `GET /v3/clusters/{cluster}`, the health probe.
 * Unknown paths answer 404 with `{ error_code: 404, message }`, as the proxy does.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Kafka, Partitioners, type Producer } from 'kafkajs'

export interface KafkaRestStub {
  url: string
  /** Produce requests answered, successful or not. */
  requests(): number
  close(): Promise<void>
}

interface ProduceRecordV3 {
  key?: { type: string; data: string }
  value?: { type: string; data: string }
  headers?: { name: string; value: string }[]
}

const fromBase64 = (data: string) => Buffer.from(data, 'base64')

async function body(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function reply(response: import('node:http').ServerResponse, status: number, json: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json))
}

async function produce(producer: Producer, cluster: string, topic: string, raw: string) {
  const record = JSON.parse(raw) as ProduceRecordV3
  if (record.key?.type !== 'STRING' || record.value?.type !== 'BINARY')
    return { status: 400, json: { error_code: 400, message: 'key must be STRING and value BINARY' } }
  const [meta] = await producer.send({
    topic,
    acks: -1,
    messages: [
      {
        key: record.key.data,
        value: fromBase64(record.value.data),
        headers: Object.fromEntries((record.headers ?? []).map((h) => [h.name, fromBase64(h.value)])),
      },
    ],
  })
  return {
    status: 200,
    json: {
      error_code: 200,
      cluster_id: cluster,
      topic_name: topic,
      partition_id: meta?.partition ?? 0,
      offset: Number(meta?.baseOffset ?? 0),
    },
  }
}

/** Starts the stub on a free port of 127.0.0.1. */
export async function startKafkaRestStub(kafka: Kafka, clusterId = 'local'): Promise<KafkaRestStub> {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  let requests = 0
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://stub')
    const records = /^\/v3\/clusters\/([^/]+)\/topics\/([^/]+)\/records$/.exec(url.pathname)
    if (request.method === 'POST' && records) {
      requests += 1
      const [, cluster, topic] = records as unknown as [string, string, string]
      body(request)
        .then((raw) => produce(producer, decodeURIComponent(cluster), decodeURIComponent(topic), raw))
        .then(
          ({ status, json }) => reply(response, status, json),
          (error: Error) => reply(response, 500, { error_code: 500, message: error.message }),
        )
      return
    }
    if (request.method === 'GET' && url.pathname === `/v3/clusters/${clusterId}`)
      return reply(response, 200, { kind: 'KafkaCluster', cluster_id: clusterId })
    reply(response, 404, { error_code: 404, message: `no route ${request.method} ${url.pathname}` })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await producer.disconnect()
    },
  }
}
