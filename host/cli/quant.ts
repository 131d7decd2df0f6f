/**
 * `lora-studio quant-report` — what each weight format does to a model, layer by layer, as JSON for the lab page
 * (and a short table on stdout); `lora-studio quantize` — a GGUF v3 file for llama.cpp with every decoder linear in
 * one GGML format; `lora-studio export-lora-gguf` — an adapter as a GGUF LoRA file for llama.cpp and Ollama.
 */
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { writeMergedGguf, type MergedGgufResult } from '../../engine/host-api.ts';
import { writeFileAtomic } from '../../engine/host-api.ts';
import { loadModel, loadTokenizer } from '../../engine/host-api.ts';
import { loadAdapter } from '../../engine/host-api.ts';
import { ensureSample } from '../../engine/host-api.ts';
import type { LoraWeights, ModelWeights } from '../../engine/host-api.ts';
import { calibrationTokens } from '../../engine/host-api.ts';
import { QUANT_FORMAT_NAMES, parseFormatList } from '../../engine/host-api.ts';
import { GGUF_EXPORT_FORMATS, type GgufExportFormat } from '../../engine/host-api.ts';
import { exportAdapterGguf, LORA_GGUF_DTYPES, type LoraGgufDtype } from '../../engine/host-api.ts';
import { quantReport, type CalibrationTokens, type QuantReportProgress } from '../../engine/host-api.ts';
import type { QuantReport } from '../../engine/host-api.ts';

export interface QuantReportFlags {
  model: string;
  adapter?: string;
  formats: string;
  calib?: string;
  calibTokens: string;
  calibSeq: string;
  json: string;
  bins: string;
  klThreshold?: string;
  relErrThreshold?: string;
  thresholdMultiplier?: string;
  quiet?: boolean;
}

export interface QuantizeFlags {
  model: string;
  adapter?: string;
  format: string;
  out: string;
  name?: string;
  quiet?: boolean;
}

function wholeNumber(v: string, flag: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be a whole number ≥ ${min}, got ${JSON.stringify(v)}`);
  return n;
}

function positive(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`${flag} must be a number > 0, got ${JSON.stringify(v)}`);
  return n;
}

function progressPrinter(quiet: boolean | undefined): ((p: QuantReportProgress) => void) | undefined {
  if (quiet || !process.stderr.isTTY) return undefined;
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last < 200 && p.done !== p.total) return;
    last = now;
    process.stderr.write(`\r${p.phase} ${p.format}: ${p.done}/${p.total}   ${p.done === p.total ? '\n' : ''}`);
  };
}

function loadWithAdapter(modelDir: string, adapterDir: string | undefined): { model: ModelWeights; lora: LoraWeights | null } {
  const model = loadModel(modelDir, { dtype: Float32Array });
  const lora = adapterDir ? loadAdapter(adapterDir, model.config) : null;
  return { model, lora };
}

export async function quantReportCommand(o: QuantReportFlags): Promise<QuantReport> {
  const formats = parseFormatList(o.formats);
  const bins = wholeNumber(o.bins, '--bins', 2);
  const klValue = positive(o.klThreshold, '--kl-threshold');
  const relValue = positive(o.relErrThreshold, '--relerr-threshold');
  const k = positive(o.thresholdMultiplier, '--threshold-multiplier');
  const { model, lora } = loadWithAdapter(o.model, o.adapter);
  let calib: CalibrationTokens | null = null;
  if (o.calib !== undefined) {
    const path = o.calib === 'sample' ? (await ensureSample()).datasetPath : o.calib;
    const tok = await loadTokenizer(o.model);
    if (!tok) throw new Error(`--calib: ${o.model} has no tokenizer.json, so the calibration text cannot be tokenized`);
    calib = calibrationTokens(path, tok, { tokens: wholeNumber(o.calibTokens, '--calib-tokens', 2), seqLen: wholeNumber(o.calibSeq, '--calib-seq', 2) });
    if (o.calib === 'sample') calib.source = 'built-in sample';
  }
  const report = await quantReport(model, formats, {
    lora,
    adapterName: o.adapter ? basename(resolve(o.adapter)) : undefined,
    calib,
    histogramBins: bins,
    modelName: basename(resolve(o.model)),
    thresholds: {
      weight: relValue !== undefined ? { value: relValue } : k !== undefined ? { multiplier: Math.sqrt(k) } : undefined,
      activation: klValue !== undefined ? { value: klValue } : k !== undefined ? { multiplier: k } : undefined,
      layer: klValue !== undefined ? { value: klValue } : k !== undefined ? { multiplier: k } : undefined,
    },
    onProgress: progressPrinter(o.quiet),
  });
  writeFileAtomic(o.json, JSON.stringify(report) + '\n');
  return report;
}

const mib = (b: number): string => (b / 2 ** 20).toFixed(2);

export function summarize(r: QuantReport): string {
  const head = ['format', 'bits/w', 'model MiB', 'rel.err', 'SNR dB', 'alerts', ...(r.calibration ? ['mean KL', 'top-1', 'PPL', 'ΔPPL'] : [])];
  const rows = r.formats.map((f) => [
    f.key,
    f.bitsPerWeight.toFixed(2),
    mib(f.modelBytes),
    f.overall.relErr.toExponential(2),
    f.overall.snrDb === null ? '∞' : f.overall.snrDb.toFixed(1),
    String(f.alerts),
    ...(f.output ? [f.output.meanKl.toExponential(2), `${(f.output.top1Agreement * 100).toFixed(1)} %`, f.output.perplexityQuant.toFixed(3), f.output.perplexityDelta.toFixed(4)] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  const out = [`${r.model.name}: ${r.model.layers} layers, ${r.model.parameters} parameters (${mib(r.model.bytesF16)} MiB in fp16)`, line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  for (const p of r.plans) out.push(`plan ${p.base} → ${p.high}: ${p.note}`);
  return out.join('\n');
}

export function quantizeCommand(o: QuantizeFlags): MergedGgufResult {
  if (!(GGUF_EXPORT_FORMATS as readonly string[]).includes(o.format)) throw new Error(`--format must be one of ${GGUF_EXPORT_FORMATS.join(', ')}, got ${JSON.stringify(o.format)}`);
  let last = 0;
  return writeMergedGguf(o.model, o.adapter, o.out, {
    format: o.format as GgufExportFormat,
    ...(o.name ? { name: o.name } : {}),
    onTensor: (name, i, total) => {
      if (o.quiet || !process.stderr.isTTY) return;
      const now = Date.now();
      if (now - last < 200 && i + 1 !== total) return;
      last = now;
      process.stderr.write(`\rwriting ${i + 1}/${total} ${name.padEnd(28)}${i + 1 === total ? '\n' : ''}`);
    },
  });
}

export function registerQuant(program: Command): void {
  program
    .command('quant-report')
    .description('error of every linear layer under each weight format (and, with --calib, on the model\'s outputs), as JSON')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--adapter <dir>', 'PEFT LoRA adapter: the report then covers "merged" and "adapter on a quantized base"')
    .option('--formats <list>', `comma-separated formats (${QUANT_FORMAT_NAMES.join(', ')})`, QUANT_FORMAT_NAMES.join(','))
    .option('--calib <file|sample>', 'calibration text (plain text, JSONL or JSON records; "sample" = the built-in sample dataset)')
    .option('--calib-tokens <n>', 'calibration tokens to use', '512')
    .option('--calib-seq <n>', 'tokens per calibration sequence', '128')
    .option('--bins <n>', 'bins of the weight and error histograms in the report', '64')
    .option('--kl-threshold <x>', 'flag linears and layers whose output-histogram KL exceeds x (instead of 3 × median)')
    .option('--relerr-threshold <x>', 'flag linears whose relative weight error exceeds x (instead of √3 × median)')
    .option('--threshold-multiplier <k>', 'automatic thresholds at k × median KL (√k × median relative error)')
    .requiredOption('--json <out.json>', 'where to write the report')
    .option('--quiet', 'no progress on stderr')
    .action(async (o: QuantReportFlags) => {
      const r = await quantReportCommand(o);
      process.stdout.write(summarize(r) + '\n');
    });

  program
    .command('quantize')
    .description('write a GGUF v3 file (llama.cpp) with every decoder linear in one GGML format')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--adapter <dir>', 'PEFT LoRA adapter to merge before quantizing')
    .requiredOption('--format <q8_0|q4_0|q4_1|f16>', 'format of the linear weights (embeddings and output in F16, norms in F32)')
    .requiredOption('--out <file.gguf>', 'output file')
    .option('--name <name>', 'general.name in the file (default: the model folder name)')
    .option('--quiet', 'no progress on stderr')
    .action((o: QuantizeFlags) => {
      const r = quantizeCommand(o);
      const fb = r.fallbacks.length ? ` (${r.fallbacks.length} linear${r.fallbacks.length > 1 ? 's' : ''} in F16: ${r.fallbacks[0].reason})` : '';
      process.stdout.write(`${o.out}: ${r.tensors} tensors, ${mib(r.bytes)} MiB${fb}\n`);
      if (r.tokenizerNote) process.stderr.write(`warning: ${r.tokenizerNote}\n`);
    });

  program
    .command('export-lora-gguf')
    .description('write a PEFT LoRA adapter as a GGUF LoRA file (llama.cpp --lora, Ollama ADAPTER), next to a GGUF of its base model')
    .requiredOption('--adapter <dir>', 'PEFT LoRA adapter folder')
    .option('--model <dir>', "the base model folder (default: the adapter's base_model_name_or_path)")
    .requiredOption('--out <file.gguf>', 'output file')
    .option('--dtype <f32|f16>', 'tensor type in the file', 'f32')
    .action((o: { adapter: string; model?: string; out: string; dtype: string }) => {
      if (!(LORA_GGUF_DTYPES as readonly string[]).includes(o.dtype)) throw new Error(`--dtype must be one of ${LORA_GGUF_DTYPES.join(', ')}, got ${JSON.stringify(o.dtype)}`);
      const r = exportAdapterGguf(o.adapter, o.out, { dtype: o.dtype as LoraGgufDtype, ...(o.model ? { modelDir: o.model } : {}) });
      process.stdout.write(`${o.out}: ${r.tensors} tensors, ${mib(r.bytes)} MiB (base model ${r.modelDir})\n`);
    });
}
