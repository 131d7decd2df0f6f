import type { Command } from 'commander';

// Placeholder until this command is written; it says so instead of doing nothing.
export function registerServe(program: Command): void {
  program.command('serve').description('(not yet available)').action(() => {
    throw new Error("'serve' is not available yet");
  });
}
