import { describe, expect, it } from 'vitest'
import { createInbox, type InboxPrismaClient, type InboxTransactionClient } from './inbox.js'

/** A client that records the SQL text of each statement and changes nothing. */
function recordingPrisma(): { prisma: InboxPrismaClient; statements: string[] } {
  const statements: string[] = []
  const tx: InboxTransactionClient = {
    $executeRawUnsafe: (query) => {
      statements.push(query)
      return Promise.resolve(0)
    },
  }
  return { prisma: { $transaction: (fn) => fn(tx) }, statements }
}

describe('the inbox table name', () => {
  it.each([
    ['outbox_inbox', '"outbox_inbox"'],
    ['app.outbox_inbox', '"app"."outbox_inbox"'],
    ['App.Inbox', '"App"."Inbox"'],
  ])('Should quote %s part by part as %s', async (table, quoted) => {
    const { prisma, statements } = recordingPrisma()
    await createInbox(prisma, { consumer: 'c', table }).purge({ olderThanMs: 1, batchSize: 10 })
    expect(statements[0]).toContain(`DELETE FROM ${quoted} WHERE`)
    expect(statements[0]).toContain(`SELECT i.ctid FROM ${quoted} AS i`)
  })

  it.each(['a; drop', 'a.b.c', '.a', 'a.', 'a."b"', ''])(
    'Should refuse %j, naming options.table',
    (table) => {
      const { prisma } = recordingPrisma()
      expect(() => createInbox(prisma, { consumer: 'c', table })).toThrow(/options\.table/)
    },
  )
})
