import type { Command } from 'commander';

// Placeholder until this command is written; it says so instead of doing nothing.
export function registerGenerate(program: Command): void {
  program.command('generate').description('(not yet available)').action(() => {
    throw new Error("'generate' is not available yet");
  });
}
