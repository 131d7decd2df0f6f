import type { Command } from 'commander';

// Placeholder until this command is written; it says so instead of doing nothing.
export function registerEvalLoss(program: Command): void {
  program.command('eval-loss').description('(not yet available)').action(() => {
    throw new Error("'eval-loss' is not available yet");
  });
}
