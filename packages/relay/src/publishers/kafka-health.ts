/**
 * A broker reachability check for `createRelayApp({ checkBroker })`, on a kafkajs admin client.
 * @module
 */
import type { Admin, Kafka } from 'kafkajs'

/** What {@link kafkaHealthCheck} returns. */
export interface KafkaHealthCheck {
  /** Resolves when a broker answered a metadata request within the timeout; rejects otherwise. */
  check(): Promise<void>
  /** Disconnects the admin client. */
  close(): Promise<void>
}

/**
 * Checks the broker with `admin.describeCluster()` (one metadata round trip) on an admin client
 * that is connected on first use and kept; after a failure it is dropped and the next check
 * connects afresh. The admin does not retry (`retries: 0`), so a down broker fails fast.
 *
 * @param kafka - the relay's kafkajs client
 * @param [options.timeoutMs=2000] - a slower answer counts as down
 * @example
 * const broker = kafkaHealthCheck(kafka)
 * const app = createRelayApp({ engine, pool, auth, checkBroker: broker.check })
 */
export function kafkaHealthCheck(kafka: Kafka, options: { timeoutMs?: number } = {}): KafkaHealthCheck {
  const timeoutMs = options.timeoutMs ?? 2_000
  let admin: Admin | undefined
  let connecting: Promise<Admin> | undefined

  const drop = async () => {
    const a = admin
    admin = undefined
    connecting = undefined
    await a?.disconnect().catch(() => {})
  }

  const connected = (): Promise<Admin> => {
    if (admin) return Promise.resolve(admin)
    connecting ??= (async () => {
      const a = kafka.admin({ retry: { retries: 0 } })
      try {
        await a.connect()
      } catch (error) {
        await a.disconnect().catch(() => {})
        throw error
      }
      admin = a
      return a
    })().finally(() => {
      connecting = undefined
    })
    return connecting
  }

  return {
    async check() {
      let timer: ReturnType<typeof setTimeout> | undefined
      try {
        await Promise.race([
          (async () => {
            const a = await connected()
            await a.describeCluster()
          })(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`broker did not answer within ${timeoutMs} ms`)),
              timeoutMs,
            )
          }),
        ])
      } catch (error) {
        await drop()
        throw error
      } finally {
        clearTimeout(timer)
      }
    },
    close: drop,
  }
}
