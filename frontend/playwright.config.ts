import { defineConfig, devices } from '@playwright/test';

// Chromium from the system (apt-get install chromium), never a downloaded
// build. Without the background-networking flags Chromium's own connections
// fail on a closed network and slow every page.
const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export default defineConfig({
  testDir: './e2e',
  // Starts `woocom-dev up` (which builds and serves this frontend) and stops it after.
  globalSetup: './e2e/global-setup.ts',
  // The first start compiles every function: allow for it, but not forever.
  globalTimeout: 25 * 60_000,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    headless: true,
    actionTimeout: 15_000,
    navigationTimeout: 30_000,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: chromiumArgs,
    },
  },
  projects: [
    {
      name: 'chromium',
      use: { ...devices['Desktop Chrome'], channel: undefined },
    },
  ],
});
