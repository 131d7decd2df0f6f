import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  // Vite fills in import.meta.dirname for config files, so the build works from any working directory.
  root: import.meta.dirname,
  // Relative asset URLs: Electron loads the page from file://, the web host from /.
  base: './',
  plugins: [react()],
  build: {
    outDir: '../dist/renderer',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1500,
  },
  server: { host: '127.0.0.1' },
});
