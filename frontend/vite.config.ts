// Builds the console into dist/ (served at / by the local stack, SPA fallback to index.html).
// `npm run dev` proxies /api (REST and websocket) to MC_API, default the `make run` stack on :8000.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const api = env.MC_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 400 },
  server: { proxy: { "/api": { target: api, changeOrigin: true, ws: true } } },
  // Pure parts run in node; component and hook tests (*.test.tsx) say `@vitest-environment jsdom` at their top.
  test: { environment: "node", include: ["src/**/*.test.{ts,tsx}"] },
});
