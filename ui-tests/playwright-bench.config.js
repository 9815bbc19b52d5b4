/**
 * Playwright configuration of the browser benchmarks (ui-tests/benchmarks/): the UI tests'
 * configuration with another test folder. Run by benchmarks/bench_sidebar.sh; not part of
 * `npx playwright test` (they time things, they do not test them).
 */
const config = require('./playwright.config');

module.exports = {
  ...config,
  testDir: './benchmarks',
  testMatch: '**/*.bench.ts',
  outputDir: './test-results/benchmarks'
};
