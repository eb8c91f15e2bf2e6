/**
 * An OTLP/HTTP trace endpoint for tests: what a process exports with the OTLP/HTTP (JSON) exporter
 * arrives here as spans.
 */
import { createServer, type Server } from 'node:http'

/** A span as OTLP/JSON carries it (ids in hex). */
export interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  links?: { traceId: string; spanId: string }[]
  attributes?: { key: string; value: { stringValue?: string; intValue?: string | number } }[]
  service?: string
}

/** An OTLP/HTTP (JSON) trace endpoint on a free port, keeping the spans it receives. */
export async function otlpEndpoint(): Promise<{ url: string; spans: OtlpSpan[]; server: Server }> {
  const spans: OtlpSpan[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString()
    })
    req.on('end', () => {
      const data = JSON.parse(body) as {
        resourceSpans: {
          resource?: OtlpSpan['attributes'] extends infer A ? { attributes?: A } : never
          scopeSpans: { spans: OtlpSpan[] }[]
        }[]
      }
      for (const r of data.resourceSpans) {
        const service = r.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue
        for (const scope of r.scopeSpans) for (const span of scope.spans) spans.push({ ...span, service })
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return { url: `http://127.0.0.1:${port}`, spans, server }
}
