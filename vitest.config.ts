import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup/turn-event-loop.ts'],
    // No separate debug files from the machine (as gdbBatch's debug-file-directory /nonexistent):
    // tests read only the repository.
    env: { DBG_DEBUG_FILE_DIRECTORY: '' },
  },
});
