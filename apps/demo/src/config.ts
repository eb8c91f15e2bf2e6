import { z } from 'zod'

const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Your PostgreSQL; when absent the demo starts an embedded one. */
  DATABASE_URL: z.url().optional(),
  /** Your Kafka brokers, comma separated; when absent the demo starts the project's local broker. */
  KAFKA_BROKERS: z
    .string()
    .optional()
    .transform((v) =>
      v
        ?.split(',')
        .map((b) => b.trim())
        .filter(Boolean),
    )
    .refine((v) => v === undefined || v.length > 0, 'list at least one host:port'),
  /** Port of the local broker started (or reused) when `KAFKA_BROKERS` is not set; as scripts/kafka.sh. */
  KAFKA_PORT: z.coerce.number().int().min(1).max(65535).default(9092),
  /** The topic of employee events. */
  EMPLOYEE_TOPIC: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,249}$/, 'use a Kafka topic name: letters, digits, ".", "_", "-"')
    .default('outbox.event.employee'),
  /** Kafka group (and inbox consumer name) of the directory service. */
  CONSUMER_GROUP: z.string().trim().min(1).default('directory'),
  /** Bearer token of the mounted relay endpoints; a random one is made (and printed) when absent. */
  RELAY_TOKEN: z.string().min(32, 'use at least 32 characters').optional(),
  /** How often the in-process schedule drains the outbox. */
  DRAIN_INTERVAL_MS: z.coerce.number().int().min(50).max(3_600_000).default(500),
  /** Where the embedded PostgreSQL keeps its data. */
  EMBEDDED_PG_DIR: z.string().default('.embedded-pg'),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
})

export type DemoConfig = z.infer<typeof configSchema>

/** Reads the demo's configuration from the environment; the error names each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const parsed = configSchema.safeParse(env)
  if (!parsed.success) throw new Error(`invalid demo configuration:\n${z.prettifyError(parsed.error)}`)
  return parsed.data
}
