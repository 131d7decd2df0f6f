/**
 * `lora-studio generate`: text from a model folder, with or without a LoRA adapter, KV-cached on either backend (on
 * webgpu the cache, attention and lm_head stay on the device: one prefill, then one token per step). Prints the
 * generated continuation (the prompt excluded) on stdout.
 */
import type { Command } from 'commander';
import { cpuSharedMemoryWanted } from '../../engine/host-api.ts';
import { generate } from '../../engine/host-api.ts';
import { generateWebgpu } from '../../engine/host-api.ts';
import { loadModel, loadTokenizer } from '../../engine/host-api.ts';
import { loadAdapter } from '../../engine/host-api.ts';
import { formatPrompt } from '../../engine/host-api.ts';
import { PROMPT_FORMATS, type PromptFormat } from '../../common/protocol.ts';

export interface GenerateCliOptions {
  model: string;
  adapter?: string;
  prompt: string;
  maxNewTokens: string;
  temperature: string;
  topP: string;
  seed: string;
  backend: string;
  promptFormat: string;
  system?: string;
  chatTemplate?: string;
  /** Keep frozen weights as f16 bits in memory (cpu decodes them on the fly). */
  frozenF16?: boolean;
}

function num(v: string, flag: string, ok: (n: number) => boolean, want: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new Error(`${flag} must be ${want}, got ${JSON.stringify(v)}`);
  return n;
}

export async function generateCommand(o: GenerateCliOptions): Promise<string> {
  const maxNewTokens = num(o.maxNewTokens, '--max-new-tokens', (n) => Number.isInteger(n) && n >= 0, 'a whole number ≥ 0');
  const temperature = num(o.temperature, '--temperature', (n) => n >= 0, 'a number ≥ 0 (0 = greedy)');
  const topP = num(o.topP, '--top-p', (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const seed = num(o.seed, '--seed', Number.isInteger, 'a whole number');
  if (o.backend !== 'cpu' && o.backend !== 'webgpu') throw new Error(`--backend must be cpu or webgpu, got ${JSON.stringify(o.backend)}`);
  if (!(PROMPT_FORMATS as readonly string[]).includes(o.promptFormat)) throw new Error(`--prompt-format must be one of ${PROMPT_FORMATS.join(', ')}, got ${JSON.stringify(o.promptFormat)}`);
  const model = loadModel(o.model, { dtype: Float32Array, frozenF16: o.frozenF16 === true, shared: o.backend === 'cpu' && cpuSharedMemoryWanted() });
  const tokenizer = await loadTokenizer(o.model);
  if (!tokenizer) throw new Error(`${o.model}: no tokenizer.json, so the prompt cannot be tokenized`);
  const lora = o.adapter ? loadAdapter(o.adapter, model.config) : null;
  const prompt = formatPrompt(tokenizer, model.config, {
    prompt: o.prompt,
    promptFormat: o.promptFormat as PromptFormat,
    ...(o.system !== undefined ? { system: o.system } : {}),
    ...(o.chatTemplate !== undefined ? { chatTemplate: o.chatTemplate } : {}),
  });
  const promptIds = prompt.ids;
  const opts = { maxNewTokens, temperature, topP, seed, eosTokenIds: prompt.stopIds };
  const ids = o.backend === 'webgpu' ? await generateWebgpu(model, lora, promptIds, opts) : generate(model, lora, promptIds, opts);
  return tokenizer.decode(ids, { skipSpecialTokens: true });
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('generate text from a model (and optionally a LoRA adapter)')
    .requiredOption('--model <dir>', 'Hugging Face model folder (with tokenizer.json)')
    .option('--adapter <dir>', 'PEFT LoRA adapter folder')
    .requiredOption('--prompt <text>', 'prompt text')
    .option('--prompt-format <raw|alpaca|chat>', 'how the prompt is wrapped, as the adapter was trained: raw text (special tokens added), the Alpaca instruction prompt, or one user turn through the chat template', 'raw')
    .option('--system <text>', 'chat: a system message; alpaca: replaces the preamble')
    .option('--chat-template <name>', "chat: a built-in template (llama3, chatml, mistral) instead of the model's own")
    .option('--max-new-tokens <n>', 'tokens to generate at most', '64')
    .option('--temperature <t>', '0 = greedy; otherwise sampling temperature', '0')
    .option('--top-p <p>', 'nucleus sampling mass', '1')
    .option('--seed <n>', 'sampling seed', '42')
    .option('--backend <cpu|webgpu>', 'compute backend', 'cpu')
    .option('--frozen-f16', 'keep the frozen base weights as f16 in memory (half the memory; values rounded to f16)')
    .action(async (o: GenerateCliOptions) => {
      process.stdout.write((await generateCommand(o)) + '\n');
    });
}
