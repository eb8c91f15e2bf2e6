import { describe, expect, it } from 'vitest'
import { kafkaBrokers } from './kafka.js'

describe('kafkaBrokers', () => {
  it('reads KAFKA_BROKERS, else the local broker on KAFKA_PORT, else on 9092', () => {
    expect(kafkaBrokers({ KAFKA_BROKERS: 'a:1, b:2' })).toEqual(['a:1', 'b:2'])
    expect(kafkaBrokers({ KAFKA_BROKERS: 'a:1', KAFKA_PORT: '19092' })).toEqual(['a:1'])
    expect(kafkaBrokers({ KAFKA_PORT: '19092' })).toEqual(['127.0.0.1:19092'])
    expect(kafkaBrokers({})).toEqual(['127.0.0.1:9092'])
  })

  it('names a KAFKA_PORT that is not a port', () => {
    expect(() => kafkaBrokers({ KAFKA_PORT: 'kafka' })).toThrow(/KAFKA_PORT must be a port number/)
    expect(() => kafkaBrokers({ KAFKA_PORT: '70000' })).toThrow(/KAFKA_PORT/)
  })
})
