import type { Command } from 'commander';
import { DATASET_FORMATS, type DatasetFormat, type DatasetSummary } from '../../common/protocol.ts';
import { BUILTIN_TEMPLATE_NAMES, type BuiltinTemplateName } from '../../engine/host-api.ts';
import { inspectDataset } from '../../engine/host-api.ts';
import { loadTokenizer } from '../../engine/host-api.ts';
import type { Tokenizer } from '../../engine/host-api.ts';

interface InspectFlags {
  model?: string;
  format: string;
  maxSeqLen?: string;
  show?: string;
  badRecords: string;
  chatTemplate?: string;
  trainOn: string;
  json?: boolean;
}

function wholeNumber(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be a whole number ≥ ${min}, got "${value}"`);
  return n;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

/** Marks trained spans with ⟦ ⟧ so a terminal shows what the loss sees. */
function marked(text: string, spans: [number, number][]): string {
  let out = '';
  let at = 0;
  for (const [s, e] of spans) {
    out += `${text.slice(at, s)}⟦${text.slice(s, e)}⟧`;
    at = e;
  }
  return out + text.slice(at);
}

function printHuman(summary: DatasetSummary, tokenizerNote: string): void {
  const lines: string[] = [];
  lines.push(`file:      ${summary.path}`);
  lines.push(`format:    ${summary.format}${summary.chatTemplate ? ` (chat template: ${summary.chatTemplate})` : ''}`);
  lines.push(`records:   ${summary.records} good, ${summary.badRecordCount ?? summary.badRecords.length} bad`);
  for (const b of summary.badRecords.slice(0, 20)) lines.push(`  line ${b.line}: ${b.message}`);
  if (summary.badRecords.length > 20) lines.push(`  … ${(summary.badRecordCount ?? summary.badRecords.length) - 20} more (see --json)`);
  const s = summary.tokenStats;
  if (s) {
    lines.push(`tokens:    ${tokenizerNote}: min ${s.min}, median ${s.median}, mean ${s.mean.toFixed(1)}, p95 ${s.p95}, max ${s.max}, total ${s.total}`);
    if (summary.maxSeqLen !== undefined) lines.push(`truncated: ${summary.truncated ?? 0} of ${s.count} longer than ${summary.maxSeqLen} tokens`);
    const h = summary.histogram;
    if (h) {
      const peak = Math.max(...h.counts, 1);
      for (let i = 0; i < h.counts.length; i++) {
        if (h.counts[i] === 0) continue;
        const cut = summary.maxSeqLen !== undefined && h.edges[i] >= summary.maxSeqLen ? ' (cut)' : '';
        lines.push(`  ${String(h.edges[i]).padStart(7)}–${String(h.edges[i + 1]).padEnd(7)} ${'█'.repeat(Math.ceil((h.counts[i] / peak) * 40))} ${h.counts[i]}${cut}`);
      }
    }
  } else {
    lines.push('tokens:    give --model DIR to count tokens');
  }
  summary.preview.forEach((p, i) => {
    lines.push('', `── example ${i + 1} (trained on: ⟦…⟧, spans ${JSON.stringify(p.trainedSpans)})`, marked(p.text, p.trainedSpans));
  });
  console.log(lines.join('\n'));
}

export function registerDataset(program: Command): void {
  const dataset = program.command('dataset').description('work with dataset files');
  dataset
    .command('inspect')
    .description('detect the format, count records, report bad ones and token lengths, and preview what is trained on')
    .argument('<file>', 'JSONL, JSON array, CSV/TSV, Parquet or plain-text file')
    .option('--model <dir>', "model folder whose tokenizer and chat template are used")
    .option('--format <format>', `record format: ${DATASET_FORMATS.join('|')}`, 'auto')
    .option('--max-seq-len <n>', 'count examples longer than this many tokens (truncated in training)')
    .option('--show <n>', 'print the first N examples as rendered, with the trained spans')
    .option('--bad-records <policy>', 'fail at the first bad record, or skip and list them: fail|skip', 'skip')
    .option('--chat-template <name>', `built-in chat template instead of the model's: ${BUILTIN_TEMPLATE_NAMES.join('|')}`)
    .option('--train-on <what>', 'auto|completions|all', 'auto')
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, flags: InspectFlags) => {
      const format = oneOf<DatasetFormat>(flags.format, DATASET_FORMATS, '--format');
      const badRecords = oneOf(flags.badRecords, ['fail', 'skip'] as const, '--bad-records');
      const trainOn = oneOf(flags.trainOn, ['auto', 'completions', 'all'] as const, '--train-on');
      const maxSeqLen = wholeNumber(flags.maxSeqLen, '--max-seq-len', 1);
      const show = wholeNumber(flags.show, '--show', 0) ?? 0;
      if (flags.chatTemplate !== undefined) oneOf<BuiltinTemplateName>(flags.chatTemplate, BUILTIN_TEMPLATE_NAMES, '--chat-template');
      let tokenizer: Tokenizer | null = null;
      if (flags.model !== undefined) tokenizer = await loadTokenizer(flags.model);
      const summary = await inspectDataset({
        path: file,
        format,
        tokenizer,
        show,
        trainOn,
        badRecords,
        ...(maxSeqLen !== undefined ? { maxSeqLen } : {}),
        ...(flags.chatTemplate !== undefined ? { chatTemplateOverride: flags.chatTemplate } : {}),
      });
      if (flags.json) {
        const { tokenLengths, ...rest } = summary;
        const preview = summary.preview.map((p) => ({ ...p, trained: p.trainedSpans.map(([s, e]) => p.text.slice(s, e)) }));
        console.log(JSON.stringify({ ...rest, tokenized: tokenLengths !== undefined, modelHasTokenizer: flags.model === undefined ? null : tokenizer !== null, preview }, null, 2));
      } else {
        const note = tokenizer ? 'model tokenizer' : 'pre-tokenized';
        if (flags.model !== undefined && tokenizer === null) console.log(`note: ${flags.model} has no tokenizer.json; only pre-tokenized data can be counted`);
        printHuman(summary, note);
      }
    });
}
