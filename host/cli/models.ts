/**
 * `lora-studio models`: the models already on this machine (Hugging Face cache, Ollama, LM Studio), each with its
 * format, size and quantization, and the path to give `train --model`; a model that cannot be trained says why.
 */
import type { Command } from 'commander';
import type { LocalModelsInfo } from '../../common/protocol.ts';
import { discoverModels } from '../../engine/host-api.ts';
import { hubEndpoint, pullFromHub, type HubPullProgress } from '../../engine/host-api.ts';
import { formatBytes } from '../../engine/host-api.ts';

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

function pullProgressLine(p: HubPullProgress): string {
  const of = (n: number, t: number | null): string => (t === null ? formatBytes(n) : `${formatBytes(n)} / ${formatBytes(t)}`);
  return `\r[${p.fileIndex + 1}/${p.files}] ${p.file}  ${of(p.fileBytes, p.fileTotal)}  (all: ${of(p.bytes, p.total)})   `;
}

export function registerModels(program: Command): void {
  const models = program
    .command('models')
    .description('list the models already on this machine (HF_HUB_CACHE/HF_HOME, OLLAMA_MODELS or ~/.ollama/models, ~/.lmstudio/models) with the path to train them')
    .option('--json', 'print the list as JSON')
    .action((flags: { json?: boolean }) => {
      const info = discoverModels();
      process.stdout.write(flags.json ? JSON.stringify(info, null, 2) + '\n' : formatLocalModels(info));
    });
  models
    .command('pull <repo>')
    .description('download org/name from Hugging Face (HF_ENDPOINT, HF_TOKEN honoured) into the Hugging Face cache: config, tokenizer and safetensors, or one --file .gguf; resumes an interrupted download')
    .option('--file <name>', 'one .gguf file of the repository instead of the safetensors model')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print the result as JSON')
    .action(async (repo: string, flags: { file?: string; revision: string; quiet?: boolean; json?: boolean }) => {
      const abort = new AbortController();
      // Ctrl-C stops the download at once; what was fetched stays as .incomplete for the next pull to resume.
      const onSigint = (): void => abort.abort();
      process.once('SIGINT', onSigint);
      const tty = !flags.quiet && process.stderr.isTTY;
      if (!flags.quiet) process.stderr.write(`pulling ${repo}${flags.file ? ` (${flags.file})` : ''} from ${hubEndpoint()}\n`);
      try {
        const r = await pullFromHub(
          { repo, revision: flags.revision, ...(flags.file ? { file: flags.file } : {}) },
          { signal: abort.signal, ...(tty ? { onProgress: (p: HubPullProgress) => void process.stderr.write(pullProgressLine(p)) } : {}) },
        );
        if (tty) process.stderr.write('\n');
        if (flags.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        else process.stdout.write(`${r.repo} at ${r.commit} (${r.files.length} files, ${formatBytes(r.downloadedBytes)} downloaded)\ntrain it with: lora-studio train --model ${r.path}\n${r.path}\n`);
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
