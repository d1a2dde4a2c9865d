/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
import { woocomConfigPlugin } from './devConfig.ts';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  plugins: [react(), woocomConfigPlugin(root)],
  build: { sourcemap: true },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}', 'devConfig.test.ts'],
    restoreMocks: true,
    setupFiles: ['./src/test/setup.ts'],
  },
});
