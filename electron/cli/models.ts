/**
 * `lora-studio models`: the models already on this machine (Hugging Face cache, Ollama, LM Studio), each with its
 * format, size and quantization, and the path to give `train --model`; a model that cannot be trained says why.
 */
import type { Command } from 'commander';
import type { LocalModelsInfo } from '../../common/protocol.ts';
import { discoverModels } from '../../engine/io/model-discovery.ts';
import { formatBytes } from '../../engine/train/memory-estimate.ts';

const STORE_NAMES = { 'hf-cache': 'Hugging Face cache', ollama: 'Ollama', lmstudio: 'LM Studio' } as const;

export function formatLocalModels(info: LocalModelsInfo): string {
  const lines: string[] = [];
  for (const s of info.searched) lines.push(`${STORE_NAMES[s.store]}: ${s.dir}${s.exists ? '' : ' (not found)'}`);
  lines.push('');
  if (info.models.length === 0) lines.push('no models found');
  for (const m of info.models) {
    const what = [m.format === 'gguf' ? 'GGUF' : 'HF folder', formatBytes(m.sizeBytes), m.architecture, m.quantization].filter((x) => x).join(' · ');
    lines.push(`${m.problem ? '✗' : '✓'} [${STORE_NAMES[m.store]}] ${m.name}  (${what})`, `    ${m.path}`);
    if (m.problem) lines.push(`    cannot be trained: ${m.problem}`);
  }
  return lines.join('\n') + '\n';
}

export function registerModels(program: Command): void {
  program
    .command('models')
    .description('list the models already on this machine (HF_HUB_CACHE/HF_HOME, OLLAMA_MODELS or ~/.ollama/models, ~/.lmstudio/models) with the path to train them')
    .option('--json', 'print the list as JSON')
    .action((flags: { json?: boolean }) => {
      const info = discoverModels();
      process.stdout.write(flags.json ? JSON.stringify(info, null, 2) + '\n' : formatLocalModels(info));
    });
}
