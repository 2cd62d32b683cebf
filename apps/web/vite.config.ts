/**
 * The admin UI build: apps/web/dist, served by weft-server at `/` (apps/server/src/web-ui.ts).
 * Hashed files under assets/ (cached for a year), one index.html (revalidated); no inline script
 * or style, so the UI runs under the server's strict CSP.
 */
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    // Only browsers with native module preload are supported; the polyfill would be an inline-free
    // but useless extra.
    modulePreload: { polyfill: false },
    // Small assets stay files: data: URLs would need a looser CSP.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  logLevel: 'warn',
});
