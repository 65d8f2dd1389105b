// Builds the dashboard into dist/, which is committed and embedded in the picloud
// binary (api/build.rs). File names carry content hashes; the build is
// reproducible, so ops/dashboard-test.sh can rebuild and compare with the commit.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    // No inline polyfill script: the page's CSP allows no inline script.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1200,
  },
});
