import { parseArgs } from 'node:util'
import { describe, expect, it } from 'vitest'
import { didYouMean, editDistance, flagErrorMessage, suggest } from './suggest.js'

describe('editDistance', () => {
  it.each([
    ['drain', 'drain', 0],
    ['drian', 'drain', 1],
    ['dran', 'drain', 1],
    ['serve', 'server', 1],
    ['stats', 'purge', 5],
    ['', 'abc', 3],
  ])('Should measure %s → %s as %i', (a, b, n) => {
    expect(editDistance(a, b)).toBe(n)
  })
})

describe('suggest', () => {
  const commands = ['serve', 'drain', 'watch', 'stream', 'stats', 'dead', 'purge']
  it.each([
    ['drian', 'drain'],
    ['serv', 'serve'],
    ['purg', 'purge'],
    ['stat', 'stats'],
    ['Watch', 'watch'],
  ])('Should suggest %s → %s', (input, expected) => {
    expect(suggest(input, commands)).toBe(expected)
  })

  it('Should not suggest anything for a word that is not a typo', () => {
    expect(suggest('publish', commands)).toBeUndefined()
    expect(suggest('x', commands)).toBeUndefined()
    expect(didYouMean('publish', commands)).toBe('')
  })

  it('Should match flags that differ only by dashes', () => {
    expect(suggest('--batchsize', ['--batch-size', '--max-events'])).toBe('--batch-size')
    expect(suggest('--maxevents', ['--batch-size', '--max-events'])).toBe('--max-events')
  })
})

describe('flagErrorMessage', () => {
  const flags = { 'batch-size': { type: 'string' }, quiet: { type: 'boolean' } } as const
  const errorOf = (args: string[]) => {
    try {
      parseArgs({ args, options: flags, strict: true })
    } catch (error) {
      return error
    }
    throw new Error('expected a parse error')
  }

  it('Should name an unknown flag and suggest the closest one', () => {
    expect(flagErrorMessage(errorOf(['--batchsize', '3']), ['--batch-size', '--quiet'])).toBe(
      'unknown flag --batchsize; did you mean --batch-size?',
    )
    expect(flagErrorMessage(errorOf(['--batchsize=3']), ['--batch-size', '--quiet'])).toBe(
      'unknown flag --batchsize; did you mean --batch-size?',
    )
    expect(flagErrorMessage(errorOf(['--verbose']), ['--batch-size', '--quiet'])).toBe(
      'unknown flag --verbose',
    )
  })

  it("Should keep parseArgs' own message for other errors", () => {
    expect(flagErrorMessage(errorOf(['--batch-size']), ['--batch-size'])).toMatch(/argument missing/)
  })
})
