import { defineConfig } from 'vitest/config';

// Three tiers: unit (no services), integration (kind cluster + host Postgres/Redis, real pods),
// e2e (the Helm-installed product). Each tier's globalSetup brings up what it needs.
export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          globalSetup: ['tests/support/global-setup-integration.ts'],
          testTimeout: 240_000,
          hookTimeout: 600_000,
          // 2 cores and one shared cluster: files run one at a time, tests inside a file in order.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          globalSetup: ['tests/support/global-setup-e2e.ts'],
          testTimeout: 300_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
      {
        // `make bench`: figures printed side by side in one run, never asserted as timings.
        test: {
          name: 'bench',
          include: ['tests/bench/**/*.bench.ts'],
          globalSetup: ['tests/support/global-setup-integration.ts'],
          testTimeout: 1_800_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
