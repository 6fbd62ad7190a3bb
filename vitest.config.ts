import { defineConfig } from 'vitest/config';

// Three projects: `unit` (pure, no I/O, beside the code as *.test.ts), `integration`
// (*.int.test.ts, against real Postgres, Kafka, Connect/Debezium, the registry and Redis, which
// tests/global-setup.ts provides once per run) and `cluster` (tests/cluster/, the same on the
// cluster topology — 3 Kafka brokers, a Redis Cluster — which tests/cluster/global-setup.ts
// starts; `npm run test:cluster`).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['**/*.test.ts'],
          exclude: ['**/*.int.test.ts', 'node_modules/**', '.stack/**', '.stack-cluster/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts'],
          exclude: ['node_modules/**', '.stack/**', '.stack-cluster/**', 'tests/cluster/**'],
          globalSetup: ['tests/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 600_000,
          // The services are shared; files run one after another so they don't starve each other on 2 cores.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'cluster',
          include: ['tests/cluster/**/*.int.test.ts'],
          exclude: ['node_modules/**'],
          globalSetup: ['tests/cluster/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
