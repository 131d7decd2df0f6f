#!/usr/bin/env node
// Runs the CLI from the TypeScript sources (tsx) or from dist/ when the app was built.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = fileURLToPath(new URL('../dist/host/cli.js', import.meta.url));
let entry;
if (existsSync(built) && !process.env.LORA_STUDIO_FROM_SOURCE) {
  entry = pathToFileURL(built).href;
} else {
  const { register } = await import('tsx/esm/api');
  register();
  entry = new URL('../host/cli.ts', import.meta.url).href;
}
const { runCli } = await import(entry);
try {
  await runCli(process.argv);
} catch (err) {
  console.error(`lora-studio: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
