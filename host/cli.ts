/**
 * `lora-studio` command line: one sub-command per file under host/cli/, all acting on the same services and
 * data folder (LORA_STUDIO_HOME) as the desktop app.
 */
import { Command } from 'commander';
import { registerServe } from './cli/serve.ts';
import { registerTrain } from './cli/train.ts';
import { registerEvalLoss } from './cli/eval-loss.ts';
import { registerGenerate } from './cli/generate.ts';
import { registerDataset } from './cli/dataset.ts';
import { registerQuant } from './cli/quant.ts';
import { registerRuns } from './cli/runs.ts';
import { registerBundle } from './cli/bundle.ts';
import { registerExportOllama } from './cli/ollama-export.ts';
import { registerModels } from './cli/models.ts';
import { registerAdapters } from './cli/adapters.ts';

export async function runCli(argv: string[]): Promise<void> {
  const program = new Command();
  program.name('lora-studio').description('LoRA Studio: fine-tune LLaMA-family models with LoRA').showHelpAfterError();
  registerServe(program);
  registerTrain(program);
  registerEvalLoss(program);
  registerGenerate(program);
  registerDataset(program);
  registerQuant(program);
  registerRuns(program);
  registerBundle(program);
  registerModels(program);
  registerAdapters(program);
  registerExportOllama(program);
  await program.parseAsync(argv);
}
