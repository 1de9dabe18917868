import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits on real servers and a real browser (a reveal decrypts and re-renders a
    // preview): vitest's 1 s default ran out on a loaded CI machine.
    expect: { poll: { timeout: 15_000 } },
    // Two cores: more forks only thrash, and the store tests share one PostgreSQL server.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
