import type { Command } from 'commander';

// Placeholder until this command is written; it says so instead of doing nothing.
export function registerQuant(program: Command): void {
  program.command('quant').description('(not yet available)').action(() => {
    throw new Error("'quant' is not available yet");
  });
}
