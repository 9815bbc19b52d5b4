/**
 * Galata configuration for the jupyter-modelhub UI tests.
 *
 * Playwright never downloads a browser here: it drives the system Chromium.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
];

module.exports = {
  ...baseConfig,
  reporter: 'list',
  outputDir: './test-results/artifacts',
  retries: 0,
  use: {
    ...baseConfig.use,
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: CHROMIUM_FLAGS
    },
    video: 'off',
    trace: 'off',
    screenshot: 'only-on-failure'
  },
  webServer: {
    command: 'npm start',
    url: 'http://localhost:8888/lab',
    timeout: 120 * 1000,
    // Always a fresh server and hub: the tests expect an empty hub, and a server left on
    // port 8888 by another run must not be reused (it fails loudly instead).
    reuseExistingServer: false
  }
};
