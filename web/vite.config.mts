import { fileURLToPath, URL } from 'node:url';
import vue from '@vitejs/plugin-vue';
import Components from 'unplugin-vue-components/vite';
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers';
import { defineConfig } from 'vite';
import { initialJsBudget } from './build/initial-js-budget.mts';

/**
 * The web console (Vue 3 SPA). `npm run build` writes it to dist/console-web, which the api
 * serves under /console with a strict CSP (no inline script or style, no eval).
 * `npm run web:dev` serves it from Vite with the api proxied (README "Web console").
 */
const api = process.env.SHOUHU_API_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  define: {
    // vue-i18n: Composition API only; its messages compile at run time without eval (JIT), so the CSP holds.
    __VUE_I18N_LEGACY_API__: 'false',
    __VUE_I18N_FULL_INSTALL__: 'true',
    __INTLIFY_PROD_DEVTOOLS__: 'false',
    __VUE_OPTIONS_API__: 'false',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
  },
  plugins: [
    vue(),
    // Element Plus components and their CSS, imported where a template uses them (on demand, no global install).
    Components({ dts: false, resolvers: [ElementPlusResolver({ importStyle: 'css' })], dirs: [] }),
    initialJsBudget({ maxGzipKb: 500 }),
  ],
  build: {
    outDir: fileURLToPath(new URL('../dist/console-web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // Element Plus's CSS is big but cached; only JS counts toward the initial budget.
    chunkSizeWarningLimit: 1200,
  },
  server: {
    port: 5173,
    proxy: {
      '/api': { target: api, changeOrigin: false },
      '/socket.io': { target: api, ws: true },
    },
  },
});
