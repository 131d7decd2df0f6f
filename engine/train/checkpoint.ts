/**
 * Training checkpoints: runDir/checkpoints/step-N/ holds
 *   adapter_config.json + adapter_model.safetensors   the LoRA fp32 weights (a PEFT adapter in its own right),
 *   optimizer.safetensors                             AdamW moments (`<key>.exp_avg`, `<key>.exp_avg_sq`),
 *   trainer_state.json                                step, AdamW t, grad scaler, RNG states, data position, metrics.
 * A checkpoint folder is built under a temporary name, every file fsynced, then renamed into place, so a crash leaves
 * either the complete new checkpoint or none; the newest `keep` are kept.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricPoint } from '../../common/protocol.ts';
import type { LoraConfig, LoraWeights, ModelConfig } from '../model/types.ts';
import { writeDirAtomic, writeFileAtomic } from '../io/atomic.ts';
import { loadAdapter, saveAdapter } from '../io/peft-adapter.ts';
import { withSafetensors, writeSafetensors } from '../io/safetensors.ts';
import type { AdamWState } from './adamw.ts';
import type { DataPosition } from './batching.ts';
import type { GradScalerState } from './grad-scaler.ts';
import { loraTensors } from './lora-params.ts';
import type { TrainerSettings } from './run-config.ts';

export const CHECKPOINT_FORMAT = 1;
const STATE_FILE = 'trainer_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const STEP_DIR = /^step-(\d+)$/;

export interface TrainerState {
  step: number;
  scaler: GradScalerState;
  dropoutRng: number[];
  data: DataPosition;
  metrics: MetricPoint[];
  settings: TrainerSettings;
}

interface StateFile extends TrainerState {
  format: number;
  optimizerStep: number;
}

export interface Checkpoint {
  path: string;
  lora: LoraWeights;
  optimizer: AdamWState;
  state: TrainerState;
}

export function checkpointsDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

/** step-N folders of a run, newest first. */
export function listCheckpoints(runDir: string): { step: number; path: string }[] {
  const dir = checkpointsDir(runDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => ({ m: STEP_DIR.exec(name), name }))
    .filter((e): e is { m: RegExpExecArray; name: string } => e.m !== null)
    .map((e) => ({ step: Number(e.m[1]), path: join(dir, e.name) }))
    .sort((a, b) => b.step - a.step);
}

export function saveCheckpoint(
  runDir: string,
  c: { lora: LoraWeights; optimizer: AdamWState; state: TrainerState; baseModelNameOrPath: string; keep: number },
): string {
  const dir = checkpointsDir(runDir);
  const path = join(dir, `step-${c.state.step}`);
  const tensors = loraTensors(c.lora);
  if (c.optimizer.m.length !== tensors.length) throw new Error(`checkpoint: optimizer has ${c.optimizer.m.length} moments for ${tensors.length} LoRA tensors`);
  writeDirAtomic(path, (tmp) => {
    saveAdapter(tmp, c.lora, { baseModelNameOrPath: c.baseModelNameOrPath });
    writeSafetensors(
      join(tmp, OPTIMIZER_FILE),
      tensors.flatMap((t, i) => [
        { name: `${t.key}.exp_avg`, dtype: 'F32' as const, shape: t.shape, data: c.optimizer.m[i] },
        { name: `${t.key}.exp_avg_sq`, dtype: 'F32' as const, shape: t.shape, data: c.optimizer.v[i] },
      ]),
    );
    const file: StateFile = { format: CHECKPOINT_FORMAT, optimizerStep: c.optimizer.t, ...c.state };
    // Written last: a folder with this file went through every step above.
    writeFileAtomic(join(tmp, STATE_FILE), JSON.stringify(file));
  });
  // Folders of later steps are what a run we resumed from an earlier point left behind (unloadable ones, or we would
  // have resumed from them); the newest `keep` at or before this step stay.
  const older = listCheckpoints(runDir).filter((e) => {
    if (e.step <= c.state.step) return true;
    rmSync(e.path, { recursive: true, force: true });
    return false;
  });
  for (const old of older.slice(Math.max(1, c.keep))) rmSync(old.path, { recursive: true, force: true });
  // Leftovers of a crash in the middle of writeDirAtomic.
  for (const name of readdirSync(dir)) if (name.startsWith('.step-') && name.includes('.tmp-')) rmSync(join(dir, name), { recursive: true, force: true });
  return path;
}

function sameLora(a: LoraConfig, b: LoraConfig): boolean {
  return a.r === b.r && a.alpha === b.alpha && a.rslora === b.rslora && [...a.targets].sort().join() === [...b.targets].sort().join();
}

/** Reads one checkpoint folder; throws naming the folder and the part that is wrong. */
export function loadCheckpoint(path: string, modelConfig: ModelConfig): Checkpoint {
  const statePath = join(path, STATE_FILE);
  if (!existsSync(statePath)) throw new Error(`${path}: incomplete checkpoint (no ${STATE_FILE})`);
  let file: StateFile;
  try {
    file = JSON.parse(readFileSync(statePath, 'utf8')) as StateFile;
  } catch (e) {
    throw new Error(`${statePath}: not valid JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  if (file.format !== CHECKPOINT_FORMAT) throw new Error(`${statePath}: checkpoint format ${String(file.format)} is not ${CHECKPOINT_FORMAT}`);
  const lora = loadAdapter(path, modelConfig);
  const tensors = loraTensors(lora);
  const m: Float32Array[] = [];
  const v: Float32Array[] = [];
  withSafetensors(join(path, OPTIMIZER_FILE), (f) => {
    for (const t of tensors) {
      m.push(Float32Array.from(f.readFloat(`${t.key}.exp_avg`)));
      v.push(Float32Array.from(f.readFloat(`${t.key}.exp_avg_sq`)));
      if (m[m.length - 1].length !== t.data.length) throw new Error(`${path}/${OPTIMIZER_FILE}: '${t.key}.exp_avg' has ${m[m.length - 1].length} values, the adapter tensor ${t.data.length}`);
    }
  });
  const { format: _f, optimizerStep, ...state } = file;
  return { path, lora, optimizer: { t: optimizerStep, m, v }, state };
}

/**
 * The newest checkpoint of the run that loads completely, or null when there is none. A checkpoint made with other
 * LoRA settings is an error (its tensors would not fit), not something to skip.
 */
export function loadLatestCheckpoint(runDir: string, modelConfig: ModelConfig, lora: LoraConfig, onSkip?: (path: string, why: string) => void): Checkpoint | null {
  for (const c of listCheckpoints(runDir)) {
    let ck: Checkpoint;
    try {
      ck = loadCheckpoint(c.path, modelConfig);
    } catch (e) {
      onSkip?.(c.path, e instanceof Error ? e.message : String(e));
      continue;
    }
    if (!sameLora(ck.state.settings.lora, lora)) {
      const s = ck.state.settings.lora;
      throw new Error(
        `${c.path}: checkpoint was trained with LoRA r=${s.r} alpha=${s.alpha} targets=${s.targets.join(',')}${s.rslora ? ' rslora' : ''}, ` +
          `the run asks for r=${lora.r} alpha=${lora.alpha} targets=${lora.targets.join(',')}${lora.rslora ? ' rslora' : ''}`,
      );
    }
    return ck;
  }
  return null;
}
