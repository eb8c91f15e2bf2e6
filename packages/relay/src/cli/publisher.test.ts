import { Kafka } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { isRelayError } from '../core/errors.js'
import { KafkaPublisher } from '../publishers/kafkajs.js'
import { PlatformaticPublisher } from '../publishers/platformatic.js'
import { loadConfig } from './config.js'
import { createPublisher, rdkafkaSecurity } from './publisher.js'

const env = { DATABASE_URL: 'postgresql://localhost/app', KAFKA_BROKERS: '127.0.0.1:9092' }
const kafka = new Kafka({ brokers: ['127.0.0.1:9092'] })
const log = () => {}

describe('createPublisher', () => {
  it('Should publish with kafkajs by default and with @platformatic/kafka when asked', async () => {
    const byDefault = await createPublisher(loadConfig(['drain'], env), kafka, log)
    expect(byDefault).toBeInstanceOf(KafkaPublisher)
    const platformatic = await createPublisher(
      loadConfig(['drain'], { ...env, RELAY_KAFKA_CLIENT: 'platformatic' }),
      kafka,
      log,
    )
    expect(platformatic).toBeInstanceOf(PlatformaticPublisher)
  })

  it('Should refuse a client that is not installed as a configuration error that says how to install it', async () => {
    const error = await createPublisher(
      loadConfig(['drain'], { ...env, RELAY_KAFKA_CLIENT: 'confluent' }),
      kafka,
      log,
    ).catch((e: unknown) => e)
    expect(isRelayError(error, 'RELAY_INVALID_OPTIONS')).toBe(true)
    expect((error as Error).message).toMatch(
      /^RELAY_KAFKA_CLIENT=confluent: the client cannot be loaded \(.*@confluentinc\/kafka-javascript.*\); install it .*CKJS_LINKING=dynamic npm install @confluentinc\/kafka-javascript/,
    )
  })

  it('Should give librdkafka the security settings of KAFKA_SSL and KAFKA_SASL_*', () => {
    const base = { clientId: 'c', brokers: ['b:1'] }
    expect(rdkafkaSecurity({ ...base, ssl: false })).toEqual({ 'security.protocol': 'plaintext' })
    expect(rdkafkaSecurity({ ...base, ssl: true })).toEqual({ 'security.protocol': 'ssl' })
    expect(
      rdkafkaSecurity({
        ...base,
        ssl: true,
        sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
      }),
    ).toEqual({
      'security.protocol': 'sasl_ssl',
      'sasl.mechanisms': 'SCRAM-SHA-512',
      'sasl.username': 'u',
      'sasl.password': 'p',
    })
  })
})
