import { MultipleErrors, NetworkError, ProtocolError, ResponseError, TimeoutError } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'
import { classifyPublishFailure } from '../core/publisher.js'

/** As the library reports a produce request the broker answered with `type` for one partition. */
const produceFailure = (type: string) =>
  new MultipleErrors('Producing messages failed.', [
    new ResponseError(0, 9, { '/responses/0/partitionResponses/0': [codeOf(type), null] }, {}),
  ])

function codeOf(type: string): number {
  return new ProtocolError(type).apiCode as number
}

describe('classifyPublishFailure on @platformatic/kafka errors', () => {
  it.each([
    ['MESSAGE_TOO_LARGE', 'permanent'],
    ['RECORD_LIST_TOO_LARGE', 'permanent'],
    ['INVALID_RECORD', 'permanent'],
    ['INVALID_TOPIC_EXCEPTION', 'permanent'],
    ['CORRUPT_MESSAGE', 'permanent'],
    ['TOPIC_AUTHORIZATION_FAILED', 'rejected'],
    ['CLUSTER_AUTHORIZATION_FAILED', 'unavailable'],
    ['SASL_AUTHENTICATION_FAILED', 'unavailable'],
    ['OUT_OF_ORDER_SEQUENCE_NUMBER', 'unavailable'],
    ['NOT_LEADER_OR_FOLLOWER', 'unavailable'],
    ['LEADER_NOT_AVAILABLE', 'unavailable'],
    ['REQUEST_TIMED_OUT', 'unavailable'],
    ['NOT_ENOUGH_REPLICAS', 'unavailable'],
  ])('Should put %s on the %s side, bare and as a failed produce', (type, expected) => {
    expect(classifyPublishFailure(new ProtocolError(type))).toBe(expected)
    expect(classifyPublishFailure(produceFailure(type))).toBe(expected)
  })

  it('Should count a refused connection, exhausted retries and timeouts as infrastructure', () => {
    const refused = new NetworkError('Connection to 127.0.0.1:1 failed.', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
    })
    expect(classifyPublishFailure(refused)).toBe('unavailable')
    expect(classifyPublishFailure(new MultipleErrors('produce failed 3 times.', [refused, refused]))).toBe(
      'unavailable',
    )
    expect(classifyPublishFailure(new TimeoutError('Request timed out.'))).toBe('unavailable')
  })
})
