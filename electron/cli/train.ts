import type { Command } from 'commander';

// Placeholder until this command is written; it says so instead of doing nothing.
export function registerTrain(program: Command): void {
  program.command('train').description('(not yet available)').action(() => {
    throw new Error("'train' is not available yet");
  });
}
