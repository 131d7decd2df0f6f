/**
 * One training run as the engine worker performs it: load the model, tokenizer and dataset named by the RunConfig,
 * train (resuming when asked), write the final adapter to runDir/adapter, and report every stage as EngineEvents.
 * Kept apart from worker.ts so it runs the same in a worker, in the CLI and in tests.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { baseWeightsOf, isPackedBase, type EngineCommand, type EngineEvent } from '../../common/protocol.ts';
import { describeBase } from '../io/base-weights.ts';
import { cpuSharedMemoryWanted } from '../backend/cpu/cpu-ops.ts';
import { loadModel, loadTokenizer } from '../io/model-source.ts';
import { saveAdapter } from '../io/peft-adapter.ts';
import { countParameters } from '../model/llama.ts';
import type { Tokenizer } from '../model/types.ts';
import { attachBackend, chooseBackend, explainDeviceLoss, releaseBackend } from './run-backend.ts';
import { trainerSettings } from './run-config.ts';
import { runPadTokenId } from './run-data.ts';
import { runDataset } from './run-data-cache.ts';
import { EvalSampler } from './eval-sampler.ts';
import { Trainer } from './trainer.ts';

export interface RunHooks {
  post: (event: EngineEvent) => void;
  shouldStop: () => { save: boolean } | null;
}

export async function runTraining(cmd: Extract<EngineCommand, { type: 'train' }>, hooks: RunHooks): Promise<void> {
  const { runId, config, runDir } = cmd;
  const log = (level: 'info' | 'warn' | 'error', message: string): void => hooks.post({ type: 'log', runId, level, message });
  const chosen = await chooseBackend(config, log);
  const settings = trainerSettings(config);
  mkdirSync(runDir, { recursive: true });

  log('info', `loading model ${config.modelPath}`);
  // On the portable cpu path, shared memory lets its worker threads split the big products (bit-identical results).
  const baseWeights = baseWeightsOf(config.train);
  const baseWeightsKeep = config.train.baseWeightsKeep ?? null;
  if (baseWeights !== 'f32') log('info', `base weights: ${describeBase({ baseWeights, keep: baseWeightsKeep })}${isPackedBase(baseWeights) ? ' (linears packed, QLoRA)' : ''}`);
  const model = loadModel(config.modelPath, { dtype: Float32Array, baseWeights, baseWeightsKeep, shared: chosen.backend === 'cpu' && cpuSharedMemoryWanted() });
  const tokenizer: Tokenizer | null = await loadTokenizer(config.modelPath);
  if (!tokenizer && config.datasetFormat !== 'tokenized') log('warn', `${config.modelPath} has no tokenizer; only pre-tokenized data can be used`);

  // Tokenized once per run start: the preflight's cache entry when the data still matches it (run-data-cache.ts).
  const data = await runDataset(config, tokenizer, cmd.datasetCacheDir ?? null, (message) => log('info', message));
  const bad = data.badRecordCount ?? data.badRecords.length;
  if (bad > 0) {
    const first = data.badRecords.slice(0, 3).map((b) => `line ${b.line}: ${b.message}`).join('; ');
    log('warn', `${config.datasetPath}: skipped ${bad} bad record${bad === 1 ? '' : 's'} (${first}${bad > 3 ? '; …' : ''})`);
  }
  if (data.truncated > 0) log('warn', `${data.truncated} example${data.truncated === 1 ? ' was' : 's were'} cut to ${settings.maxSeqLen} tokens`);
  if (data.train.length === 0) throw Object.assign(new Error(`${config.datasetPath}: no usable training examples`), { file: config.datasetPath });
  log('info', `${data.train.length} training and ${data.validation.length} validation examples (${data.format})`);

  const padTokenId = runPadTokenId(tokenizer, model.config);
  // Fixed evaluation prompts: wrapped now (a prompt the template refuses stops the run before any step), answered at
  // the boundaries evalDue names with the LoRA pulled to the host (eval-sampler.ts says why on the host).
  const sampler = config.evalPrompts
    ? new EvalSampler({ model, tokenizer, evalPrompts: config.evalPrompts, datasetFormat: data.format, chatTemplate: data.chatTemplate ?? null, runId })
    : null;
  let trainerRef: Trainer | null = null;
  const onStepBoundary = async (step: number): Promise<void> => {
    if (!sampler || !trainerRef || !sampler.due(step, settings.steps)) return;
    await trainerRef.pullFromDevice();
    await sampler.answer(step, trainerRef.lora, (s) => hooks.post({ type: 'eval', ...s }), () => hooks.shouldStop() !== null);
  };
  const trainer = new Trainer(
    {
      model,
      settings,
      train: data.train,
      validation: data.validation,
      padTokenId,
      runDir,
      resume: cmd.resume,
      baseModelNameOrPath: config.modelPath,
      onMetric: (point) => hooks.post({ type: 'metric', runId, point }),
      onCheckpoint: (step, path) => hooks.post({ type: 'checkpoint', runId, step, path }),
      onLog: log,
      shouldStop: hooks.shouldStop,
      onStepBoundary,
    },
    countParameters(model),
  );
  trainerRef = trainer;
  await attachBackend(trainer, chosen, model, padTokenId, data, log);
  // The 'started' line names the device: the WebGPU adapter, or which cpu kernels ("native avx512, 2 threads").
  const device = chosen.adapterName !== null ? { adapterName: chosen.adapterName } : { adapterName: trainer.backend.deviceName };
  hooks.post({ type: 'started', runId, backend: chosen.backend, ...device, totalSteps: settings.steps, resumedFromStep: trainer.resumedFromStep, parameters: trainer.parameters });

  let peak: { peakGpuBytes?: number };
  let result: Awaited<ReturnType<Trainer['run']>>;
  try {
    result = await trainer.run();
  } catch (e) {
    throw explainDeviceLoss(e);
  } finally {
    peak = releaseBackend(trainer, log);
  }
  if (result.status === 'stopped') {
    hooks.post({ type: 'stopped', runId, step: result.step, checkpoint: result.checkpoint });
    return;
  }
  const adapterDir = join(runDir, 'adapter');
  try {
    saveAdapter(adapterDir, result.lora, { baseModelNameOrPath: config.modelPath });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    throw Object.assign(new Error(`cannot write the adapter to ${adapterDir}: ${e instanceof Error ? e.message : String(e)}${code === 'ENOSPC' ? ' (the disk is full)' : ''}`, { cause: e }), { file: adapterDir });
  }
  hooks.post({ type: 'done', runId, adapterDir, finalLoss: result.finalLoss, steps: result.step, ...peak });
}
