/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
import { woocomConfigPlugin } from './devConfig.ts';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  plugins: [react(), woocomConfigPlugin(root)],
  // No source maps in what customers download (they were 1.6 MB); `npm run dev` has its own.
  build: { sourcemap: false },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}', 'devConfig.test.ts'],
    restoreMocks: true,
    setupFiles: ['./src/test/setup.ts'],
  },
});
