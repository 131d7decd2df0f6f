import type { Command } from 'commander';

// Placeholder until this command is written; it says so instead of doing nothing.
export function registerDataset(program: Command): void {
  program.command('dataset').description('(not yet available)').action(() => {
    throw new Error("'dataset' is not available yet");
  });
}
