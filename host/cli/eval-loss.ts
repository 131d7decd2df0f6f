/**
 * `lora-studio eval-loss`: the loss (and optionally the LoRA gradients) of one padded batch made of a whole JSONL
 * file. The interface external parity checks use; keep it stable.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { LORA_TARGETS } from '../../common/protocol.ts';
import { roundToF16InPlace } from '../../engine/host-api.ts';
import { loadModel, loadTokenizer } from '../../engine/host-api.ts';
import { loadAdapter } from '../../engine/host-api.ts';
import { writeSafetensors } from '../../engine/host-api.ts';
import { cpuOps, cpuSharedMemoryWanted } from '../../engine/host-api.ts';
import { WebgpuLlama } from '../../engine/host-api.ts';
import { evalLoss, lossAndGrads } from '../../engine/host-api.ts';
import { newLora } from '../../engine/host-api.ts';
import { F16Array, IGNORE_INDEX } from '../../engine/host-api.ts';
import { PackedWeight } from '../../engine/host-api.ts';
import type { Batch, LoraTargetName, LoraWeights, ModelWeights, Tokenizer, TrainingExample, LinearWeight } from '../../engine/host-api.ts';
import { padBatch } from '../../engine/host-api.ts';
import { loraTensors } from '../../engine/host-api.ts';
import { Rng } from '../../engine/host-api.ts';

export interface EvalLossOptions {
  model: string;
  adapter?: string;
  data: string;
  grads?: string;
  dtype: string;
  backend: string;
  loraR: string;
  loraAlpha: string;
  loraTargets: string;
  seed: string;
  /** Keep frozen weights as f16 bits in memory (cpu decodes them on the fly). */
  frozenF16?: boolean;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function tokenIds(v: unknown, where: string, field: string, vocab: number, allowIgnore: boolean): number[] {
  if (!Array.isArray(v) || v.length === 0) throw new Error(`${where}: "${field}" must be a non-empty array of token ids`);
  v.forEach((x, i) => {
    const ok = Number.isInteger(x) && (((x as number) >= 0 && (x as number) < vocab) || (allowIgnore && x === IGNORE_INDEX));
    if (!ok) throw new Error(`${where}: "${field}"[${i}] = ${JSON.stringify(x)} is not a token id in [0, ${vocab})${allowIgnore ? ' or -100' : ''}`);
  });
  return v as number[];
}

/** Each line: {"input_ids": [...], "labels"?: [...]} or {"text": "..."}; blank lines are skipped. */
export async function readEvalData(file: string, vocab: number, tokenizer: () => Promise<Tokenizer | null>): Promise<TrainingExample[]> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as { code?: string }).code ?? String(e)})`, { cause: e });
  }
  const out: TrainingExample[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const where = `${basename(file)} line ${i + 1}`;
    let rec: unknown;
    try {
      rec = JSON.parse(lines[i]);
    } catch (e) {
      throw new Error(`${where}: invalid JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
    }
    if (!isObject(rec)) throw new Error(`${where}: expected an object with "input_ids" (and "labels") or "text"`);
    if ('input_ids' in rec) {
      const inputIds = tokenIds(rec.input_ids, where, 'input_ids', vocab, false);
      const labels = rec.labels === undefined ? [...inputIds] : tokenIds(rec.labels, where, 'labels', vocab, true);
      if (labels.length !== inputIds.length) throw new Error(`${where}: "labels" has ${labels.length} entries but "input_ids" ${inputIds.length}`);
      out.push({ inputIds, labels });
    } else if (typeof rec.text === 'string') {
      const tok = await tokenizer();
      if (!tok) throw new Error(`${where}: a "text" record needs the model's tokenizer, but the model folder has no tokenizer.json (give "input_ids" instead)`);
      const inputIds = tok.encode(rec.text);
      if (inputIds.length === 0) throw new Error(`${where}: "text" encodes to no tokens`);
      out.push({ inputIds, labels: [...inputIds] });
    } else {
      throw new Error(`${where}: expected "input_ids" (array of token ids) or "text" (string)`);
    }
  }
  if (out.length === 0) throw new Error(`${file}: no records`);
  return out;
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number ≥ 1, got ${JSON.stringify(v)}`);
  return n;
}

function parseTargets(v: string): LoraTargetName[] {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of list) if (!(LORA_TARGETS as readonly string[]).includes(t)) throw new Error(`--lora-targets: unknown module '${t}' (choose from ${LORA_TARGETS.join(', ')})`);
  if (list.length === 0) throw new Error('--lora-targets: name at least one module');
  return list as LoraTargetName[];
}

function roundModelToF16(model: ModelWeights): void {
  const seen = new Set<unknown>();
  const round = (a: LinearWeight | null): void => {
    // F16Array weights already hold f16 values; packed (quantized) ones are left as stored.
    if (a && !(a instanceof F16Array) && !(a instanceof PackedWeight) && !seen.has(a)) {
      seen.add(a);
      roundToF16InPlace(a);
    }
  };
  round(model.embedTokens);
  round(model.norm);
  round(model.lmHead);
  for (const L of model.layers) {
    round(L.inputNorm);
    round(L.postAttentionNorm);
    round(L.qNorm);
    round(L.kNorm);
    for (const lin of [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]) {
      round(lin.weight);
      round(lin.bias);
    }
  }
}

/**
 * The same numbers on the GPU. fp16 there is the training precision (frozen weights and activations f16, f32
 * accumulation), not only rounded weights as on the cpu. With `withGrads`, the gradients are read back from the device.
 */
async function webgpuLoss(model: ModelWeights, lora: LoraWeights | null, batch: Batch, precision: 'fp32' | 'fp16', withGrads: boolean): Promise<{ loss: number; tokens: number; grads: LoraWeights | null }> {
  const session = await WebgpuLlama.create({ kind: 'host', model }, lora, {
    precision,
    checkpointing: false,
    maxBatchSize: batch.batchSize,
    maxSeqLen: batch.seqLen,
    training: withGrads,
  });
  try {
    if (withGrads) {
      const r = await session.lossAndGrads(batch, { training: false });
      return { loss: r.loss, tokens: r.tokens, grads: r.tokens > 0 ? await session.readGrads() : null };
    }
    const r = await session.evalLoss(batch);
    return { loss: r.loss, tokens: r.tokens, grads: null };
  } finally {
    session.destroy();
  }
}

export async function evalLossCommand(o: EvalLossOptions): Promise<{ loss: number; tokens: number }> {
  if (o.backend !== 'cpu' && o.backend !== 'webgpu') throw new Error(`--backend must be cpu or webgpu, got ${JSON.stringify(o.backend)}`);
  if (o.dtype !== 'fp32' && o.dtype !== 'fp16') throw new Error(`--dtype must be fp32 or fp16, got ${JSON.stringify(o.dtype)}`);
  const model = loadModel(o.model, { dtype: Float32Array, frozenF16: o.frozenF16 === true, shared: o.backend === 'cpu' && cpuSharedMemoryWanted() });
  // The cpu backend computes in fp32; fp16 here means base weights rounded to fp16, as they would be stored.
  if (o.dtype === 'fp16' && o.backend === 'cpu') roundModelToF16(model);
  let tok: Promise<Tokenizer | null> | null = null;
  const examples = await readEvalData(o.data, model.config.vocabSize, () => (tok ??= loadTokenizer(o.model)));
  const batch = padBatch(examples, model.config.padTokenId ?? 0);
  let lora: LoraWeights | null = null;
  if (o.adapter) lora = loadAdapter(o.adapter, model.config);
  else if (o.grads) {
    const r = positiveInt(o.loraR, '--lora-r');
    const alpha = Number(o.loraAlpha);
    if (!(alpha > 0)) throw new Error(`--lora-alpha must be a number > 0, got ${JSON.stringify(o.loraAlpha)}`);
    const seed = Number(o.seed);
    if (!Number.isInteger(seed)) throw new Error(`--seed must be a whole number, got ${JSON.stringify(o.seed)}`);
    lora = newLora(model.config, { r, alpha, dropout: 0, targets: parseTargets(o.loraTargets), rslora: false }, new Rng(seed), Float32Array);
  }
  let result: { loss: number; tokens: number };
  if (o.backend === 'webgpu') {
    if (o.grads && !lora) throw new Error('--grads needs LoRA weights');
    const r = await webgpuLoss(model, lora, batch, o.dtype, o.grads !== undefined);
    result = { loss: r.loss, tokens: r.tokens };
    if (o.grads && r.grads) writeSafetensors(o.grads, loraTensors(r.grads).map((t) => ({ name: t.key, dtype: 'F32' as const, shape: t.shape, data: t.data })));
  } else if (o.grads) {
    if (!lora) throw new Error('--grads needs LoRA weights');
    const r = lossAndGrads(model, lora, batch, { training: false, ops: cpuOps(model) });
    if (!r.grads) throw new Error('internal: no gradients returned');
    result = { loss: r.loss, tokens: r.tokens };
    if (r.tokens > 0) writeSafetensors(o.grads, loraTensors(r.grads).map((t) => ({ name: t.key, dtype: 'F32' as const, shape: t.shape, data: t.data })));
  } else {
    const r = evalLoss(model, lora, batch, { ops: cpuOps(model) });
    result = { loss: r.loss, tokens: r.tokens };
  }
  if (result.tokens === 0) throw new Error(`${o.data}: no position has a next-token label (every label is -100 or every record is one token long)`);
  return result;
}

export function registerEvalLoss(program: Command): void {
  program
    .command('eval-loss')
    .description('loss (and LoRA gradients) of a JSONL file taken as one padded batch; prints {"loss": L, "tokens": N}')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--adapter <dir>', 'PEFT LoRA adapter folder')
    .requiredOption('--data <file.jsonl>', 'one {"input_ids": [...], "labels": [...]} or {"text": "..."} per line')
    .option('--grads <out.safetensors>', 'write dLoss/dθ of every LoRA tensor (F32, adapter_model.safetensors keys)')
    .option('--dtype <fp32|fp16>', 'precision: cpu rounds the base weights to fp16; webgpu runs fp16 mixed precision', 'fp32')
    .option('--backend <cpu|webgpu>', 'compute backend', 'cpu')
    .option('--lora-r <n>', 'rank of the fresh LoRA used when --grads is given without --adapter', '8')
    .option('--lora-alpha <n>', 'alpha of the fresh LoRA', '16')
    .option('--lora-targets <list>', 'comma-separated target modules of the fresh LoRA', 'q_proj,v_proj')
    .option('--seed <n>', 'seed of the fresh LoRA initialisation', '42')
    .option('--frozen-f16', 'keep the frozen base weights as f16 in memory (half the memory; values rounded to f16)')
    .action(async (o: EvalLossOptions) => {
      const r = await evalLossCommand(o);
      process.stdout.write(JSON.stringify(r) + '\n');
    });
}
