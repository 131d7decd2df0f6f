/**
 * The text files of an exported bundle besides train.py: the Accelerate launch configurations (one GPU, DDP,
 * DeepSpeed ZeRO-2, FSDP), DeepSpeed's own JSON, a Slurm script and the README with the launch commands.
 */
import { BUNDLE_LAUNCHERS, launchCommand, type BundleLaunch, type BundleLauncher } from '../../common/bundle-launch.ts';
import { baseWeightsOf, type RunConfig } from '../../common/protocol.ts';
import type { TrainerSettings } from '../train/run-config.ts';

export interface BundleDescription {
  name: string;
  settings: TrainerSettings;
  config: RunConfig;
  /** The decoder layer class FSDP wraps (LlamaDecoderLayer, Qwen2DecoderLayer…). */
  decoderLayerClass: string;
  trainExamples: number;
  validationExamples: number;
  targetTokens: number;
  epochs: number;
  modelLine: string;
  /** `package==version` lines of requirements.txt. */
  requirements: string[];
  deepspeedRequirement: string;
  /** The launch chosen at export (README "Launch" starts with it). */
  launch: BundleLaunch;
}

type AccelerateConfigFile = `${BundleLauncher}.yaml`;
/** The launch configurations, by file name under accelerate/: one per launcher (common/bundle-launch.ts). */
export const ACCELERATE_CONFIGS: readonly AccelerateConfigFile[] = BUNDLE_LAUNCHERS.map((l): AccelerateConfigFile => `${l}.yaml`);

/** The README's comment after each launcher's command (8 GPUs where it takes several). */
const LAUNCH_COMMENT: Record<BundleLauncher, string> = {
  'single-gpu': 'one GPU',
  'multi-gpu': '8 GPUs, DDP',
  'deepspeed-zero2': 'DeepSpeed ZeRO-2',
  fsdp: 'FSDP',
};

function launchLines(): string {
  const rows: [string, string][] = BUNDLE_LAUNCHERS.map((l) => [launchCommand({ launcher: l, processes: 8, dropout: 'torch' }), LAUNCH_COMMENT[l]]);
  rows.push(['accelerate launch --num_processes 2 --cpu train.py', 'no GPU: 2 processes (gloo)'], ['sbatch slurm.sbatch', 'Slurm, several nodes']);
  const width = Math.max(...rows.map(([c]) => c.length)) + 2;
  return rows.map(([c, comment]) => `${c.padEnd(width)}# ${comment}`).join('\n');
}
export const DEEPSPEED_JSON = 'deepspeed-zero2.json';

function mixedPrecision(s: TrainerSettings): 'fp16' | 'no' {
  return s.precision === 'fp16' ? 'fp16' : 'no';
}

/** A YAML scalar: strings YAML would read as something else (no, yes, on, 1.0, paths with ':') are quoted. */
function yamlScalar(v: string | number | boolean | null): string {
  if (v === null) return 'null';
  if (typeof v !== 'string') return String(v);
  return /^(y|n|yes|no|on|off|true|false|null|~)$/i.test(v) || /^[-+.\d]/.test(v) || /[:#\s'"{}[\],&*!|>%@`]|^$/.test(v) ? `'${v.replaceAll("'", "''")}'` : v;
}

function yamlLines(entries: [string, string | number | boolean | null][], indent = ''): string {
  return entries.map(([k, v]) => `${indent}${k}: ${yamlScalar(v)}`).join('\n');
}

const COMMON: [string, string | number | boolean | null][] = [
  ['compute_environment', 'LOCAL_MACHINE'],
  ['debug', false],
  ['machine_rank', 0],
  ['main_training_function', 'main'],
  ['num_machines', 1],
  ['rdzv_backend', 'static'],
  ['same_network', true],
  ['use_cpu', false],
];

/** accelerate/<name>: what `accelerate launch --config_file` reads. num_processes is a default; --num_processes overrides it. */
export function accelerateConfig(name: AccelerateConfigFile, d: BundleDescription): string {
  const mp = mixedPrecision(d.settings);
  const head = `# LoRA Studio bundle "${d.name}": ${describeConfig(name)}\n`;
  switch (name) {
    case 'single-gpu.yaml':
      return `${head}${yamlLines([...COMMON, ['distributed_type', 'NO'], ['downcast_bf16', 'no'], ['gpu_ids', '0'], ['mixed_precision', mp], ['num_processes', 1]])}\n`;
    case 'multi-gpu.yaml':
      return `${head}${yamlLines([...COMMON, ['distributed_type', 'MULTI_GPU'], ['downcast_bf16', 'no'], ['gpu_ids', 'all'], ['mixed_precision', mp], ['num_processes', 8]])}\n`;
    case 'deepspeed-zero2.yaml':
      // Precision, accumulation and clipping live in the DeepSpeed JSON (accelerate refuses them twice).
      return `${head}${yamlLines([...COMMON, ['distributed_type', 'DEEPSPEED'], ['downcast_bf16', 'no'], ['num_processes', 8]])}\ndeepspeed_config:\n${yamlLines(
        [
          ['deepspeed_config_file', `accelerate/${DEEPSPEED_JSON}`],
          ['zero3_init_flag', false],
        ],
        '  ',
      )}\n`;
    case 'fsdp.yaml':
      return `${head}${yamlLines([...COMMON, ['distributed_type', 'FSDP'], ['downcast_bf16', 'no'], ['mixed_precision', mp], ['num_processes', 8]])}\nfsdp_config:\n${yamlLines(
        [
          ['fsdp_version', 2],
          ['fsdp_auto_wrap_policy', 'TRANSFORMER_BASED_WRAP'],
          ['fsdp_transformer_layer_cls_to_wrap', d.decoderLayerClass],
          ['fsdp_reshard_after_forward', true],
          ['fsdp_state_dict_type', 'FULL_STATE_DICT'],
          ['fsdp_cpu_ram_efficient_loading', true],
          ['fsdp_offload_params', false],
          // Checkpointing is transformers' own (bundle.json gradientCheckpointing), not FSDP's wrapper.
          ['fsdp_activation_checkpointing', false],
        ],
        '  ',
      )}\n`;
  }
}

function describeConfig(name: AccelerateConfigFile): string {
  switch (name) {
    case 'single-gpu.yaml':
      return 'one GPU';
    case 'multi-gpu.yaml':
      return 'several GPUs, one process each (PyTorch DDP)';
    case 'deepspeed-zero2.yaml':
      return 'DeepSpeed ZeRO stage 2 (optimizer state and gradients sharded over the GPUs)';
    case 'fsdp.yaml':
      return 'PyTorch FSDP 2 (weights, gradients and optimizer state sharded, one decoder layer per unit)';
  }
}

/**
 * DeepSpeed's configuration. The fp16 loss scaler is set to behave like torch's GradScaler (and the studio's): start
 * at 2^16, halve on overflow at once (hysteresis 1), double after 2000 clean steps. "auto" fields are filled in by
 * accelerate from `--mixed_precision` and by train.py from the batch layout.
 */
export function deepspeedJson(d: BundleDescription): string {
  const s = d.settings;
  const json: Record<string, unknown> = {
    zero_optimization: { stage: 2, overlap_comm: true, contiguous_gradients: true, reduce_scatter: true, allgather_partitions: true },
    gradient_accumulation_steps: s.gradAccumulation,
    train_micro_batch_size_per_gpu: 'auto',
    train_batch_size: 'auto',
    fp16: { enabled: s.precision === 'fp16' ? true : 'auto', loss_scale: 0, initial_scale_power: 16, loss_scale_window: s.lossScaleGrowthInterval, hysteresis: 1, min_loss_scale: 1 },
    bf16: { enabled: 'auto' },
    steps_per_print: 1_000_000_000,
    wall_clock_breakdown: false,
  };
  if (s.maxGradNorm > 0) json.gradient_clipping = s.maxGradNorm;
  return `${JSON.stringify(json, null, 2)}\n`;
}

export function slurmScript(d: BundleDescription): string {
  return `#!/bin/bash
# LoRA Studio bundle "${d.name}" on a Slurm cluster: N nodes × 8 GPUs, DeepSpeed ZeRO-2.
# Submit from the bundle folder (on a file system every node sees): sbatch slurm.sbatch
# For FSDP use accelerate/fsdp.yaml; for DDP accelerate/multi-gpu.yaml.
#SBATCH --job-name=lora-studio
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --output=output/slurm-%j.log

set -euo pipefail
cd "\${SLURM_SUBMIT_DIR}"
mkdir -p output
GPUS_PER_NODE=8
export MASTER_ADDR=$(scontrol show hostnames "\${SLURM_JOB_NODELIST}" | head -n 1)
export MASTER_PORT=29500
# The environment: python -m venv .venv && .venv/bin/pip install -r requirements-deepspeed.txt (once, on a login node).
source .venv/bin/activate

srun bash -c 'accelerate launch \\
  --config_file accelerate/deepspeed-zero2.yaml \\
  --num_machines "\${SLURM_NNODES}" \\
  --num_processes $(( SLURM_NNODES * '"\${GPUS_PER_NODE}"' )) \\
  --machine_rank "\${SLURM_NODEID}" \\
  --main_process_ip "\${MASTER_ADDR}" \\
  --main_process_port "\${MASTER_PORT}" \\
  --rdzv_backend c10d \\
  train.py --output output'
`;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(6)));
}

/**
 * How the studio held the base, and what the bundle does about it: a QLoRA run (a packed base) is trained here on
 * the base in --base-dtype (no bitsandbytes among the pinned requirements), so the adapter is fitted to the float
 * base, not to the quantized one; an f16 base is rounded to f16 as the studio did.
 */
export function baseWeightsLine(config: RunConfig): string {
  const b = baseWeightsOf(config.train);
  if (b === 'f32') return 'f32, as the studio held them';
  if (b === 'f16') return 'rounded to f16 as the studio held them (train.py does the same with --base-dtype float32)';
  return `the studio trained on the base held as ${b} (QLoRA); train.py loads the base in --base-dtype (float32 by default) and does not quantize it, so this run fits the adapter to the float base — expect small differences from the studio's losses`;
}

export function bundleReadme(d: BundleDescription): string {
  const s = d.settings;
  const lora = s.lora;
  const precision = s.precision === 'fp16' ? 'fp16 mixed precision with dynamic loss scaling (GradScaler: 65536, ×0.5 on overflow, ×2 after 2000 clean steps)' : 'fp32';
  return `# ${d.name} — LoRA Studio bundle for Hugging Face Accelerate

This folder is a LoRA Studio run, ready to train on transformers + PEFT + Accelerate: on one GPU, several GPUs (DDP),
DeepSpeed ZeRO-2 or FSDP, on a workstation or a cluster. While it trains, point the studio at \`output/\`
(Runs → *External runs* → *Follow*) to watch the loss curve live and bring the adapter home.

## The run

| | |
|---|---|
| base model | ${d.modelLine} |
| base weights | ${baseWeightsLine(d.config)} |
| LoRA | r ${lora.r}, alpha ${fmt(lora.alpha)}, dropout ${fmt(lora.dropout)}, targets ${lora.targets.join(', ')}${lora.rslora ? ', rsLoRA (scaling alpha/√r)' : ''} |
| optimizer | AdamW lr ${fmt(s.learningRate)}, betas (${fmt(s.beta1)}, ${fmt(s.beta2)}), eps ${fmt(s.eps)}, weight decay ${fmt(s.weightDecay)} |
| schedule | ${s.schedule}, ${s.warmupSteps} warmup steps |
| gradient clipping | ${s.maxGradNorm > 0 ? `global norm ${fmt(s.maxGradNorm)}` : 'off (the norm is still logged)'} |
| steps | ${s.steps} optimizer steps of ${s.gradAccumulation} × ${s.batchSize} examples (≈ ${fmt(d.epochs)} epochs) |
| data | ${d.trainExamples} training examples (${d.targetTokens} target tokens), ${d.validationExamples} validation examples, max ${s.maxSeqLen} tokens${d.config.data?.packing ? ', packed' : ''} |
| precision | ${precision} |
| gradient checkpointing | ${s.gradientCheckpointing ? 'on' : 'off'} |
| seed | ${s.seed} |

The data is here exactly as the studio prepared it: \`data/train.jsonl\` and \`data/validation.jsonl\` hold token ids and
labels (−100 where the loss is not taken), so no tokenizer or chat template runs again. \`data/plan.jsonl\` lists, for
every optimizer step, the examples of each micro-batch in the studio's order, the step's target tokens and learning
rate, and the studio's dropout seeds; \`initial_adapter/\` holds the LoRA weights the studio would have started from.
The micro-batch rows are shared out over the processes, and each step's gradient is the sum of its token losses over
its target tokens, so 1, 2 or 64 GPUs train the same run.

## Install

\`\`\`bash
python -m venv .venv && . .venv/bin/activate
pip install -r requirements.txt              # DDP / FSDP / one GPU
pip install -r requirements-deepspeed.txt    # also DeepSpeed (ZeRO-2)
\`\`\`

The base model: ${d.modelLine}. Elsewhere pass \`--model <hub id or folder>\`.

## Launch

As chosen at export: \`${launchCommand(d.launch)}\`. Any of these works:

\`\`\`bash
${launchLines()}
\`\`\`

Options of \`train.py\`: \`--output DIR\` (default \`output/\`), \`--model ID|DIR\`, \`--mixed_precision bf16\` goes to
\`accelerate launch\` instead of the run's ${s.precision === 'fp16' ? 'fp16' : 'fp32'}, \`--base-dtype bfloat16\` loads the frozen
weights in bf16 (less memory for big models), \`--attn flash_attention_2\`, \`--max-steps N\` for a trial, \`--check\` to
check the bundle and the launch configuration without training, and \`--dropout studio\` to draw the studio's own
dropout masks (bit-for-bit the studio's run; pure Python, so only for small models — by default PEFT's dropout draws
its own masks, the same distribution).

## Output

- \`output/metrics.jsonl\`: one line per step, \`{"step", "loss", "learningRate", "tokens", "tokensPerSecond",
  "elapsedMs", "gradNorm", "lossScale"?, "skipped"?, "validationLoss"?}\` — the studio's own metric shape.
- \`output/status.json\`: state (running, completed, failed), step, processes, precision, the error if it failed.
- \`output/adapter/\`: the trained PEFT adapter (\`adapter_config.json\`, \`adapter_model.safetensors\`).

Follow it from the studio while it runs (Runs → *External runs* → this folder's \`output/metrics.jsonl\` → *Follow*; a
mounted or synced folder works): the adapter comes into the Adapters list when the run completes. Or import
\`output/adapter\` later with *Adapters → Import adapter*.

## Pinned versions

${d.requirements.map((r) => `- ${r}`).join('\n')}
- ${d.deepspeedRequirement} (requirements-deepspeed.txt)
`;
}
