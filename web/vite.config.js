// The console is served by switchboard under /ui/ from the files this build
// writes to dist/ (scripts/embed-ui.sh embeds them in the binary). The build
// must need nothing at run time that the Content-Security-Policy forbids:
// no inline script (the module preload polyfill would be one), no remote URL.
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

export default defineConfig({
  base: '/ui/',
  plugins: [vue()],
  // Pages use <script setup> only: leave the Options API and devtools out.
  define: {
    __VUE_OPTIONS_API__: 'false',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    reportCompressedSize: false,
    target: 'es2020',
  },
});
