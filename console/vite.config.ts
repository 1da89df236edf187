// The console's build: hashed assets under dist/assets (served immutable), index.html (no-cache).
// `npm run dev` proxies /v1/ to the edge like the CDN does (KURT_EDGE_URL, default the local one).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    proxy: { '/v1/': process.env.KURT_EDGE_URL ?? 'http://127.0.0.1:8080' },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
  },
});
