import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The build goes to dist/app, which the Go package web embeds (dist/.keep
// stays, so the package compiles before the first build). `npm run dev`
// proxies the API to a running `storefleet dev`.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist/app", emptyOutDir: true, sourcemap: false },
  server: {
    proxy: {
      "/api": { target: "http://127.0.0.1:8080", changeOrigin: false },
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
