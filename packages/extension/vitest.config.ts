import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: {
    // The generated test module imports '@prisma-outbox/extension'; point it at the sources so the
    // tests exercise the code being edited, not a possibly stale dist/ (test/package.test.ts
    // checks the built files separately).
    alias: [
      {
        find: /^@prisma-outbox\/extension$/,
        replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
