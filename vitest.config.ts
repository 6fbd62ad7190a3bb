import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure, no I/O, beside the code as *.test.ts) and `integration`
// (*.int.test.ts, against real Postgres, Kafka, Connect/Debezium, the registry and Redis, which
// tests/global-setup.ts provides once per run).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['**/*.test.ts'],
          exclude: ['**/*.int.test.ts', 'node_modules/**', '.stack/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts'],
          exclude: ['node_modules/**', '.stack/**'],
          globalSetup: ['tests/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 600_000,
          // The services are shared; files run one after another so they don't starve each other on 2 cores.
          fileParallelism: false,
        },
      },
    ],
  },
});
