/**
 * One playground job: load (or reuse) the model, format the prompt as the adapter was trained, then generate with the
 * adapter and, when asked, with the base model alone, streaming the text. The loaded model is kept between jobs so
 * the next prompt starts at once; a different folder or GGUF, or a changed config.json or GGUF file, loads again.
 */
import { totalmem } from 'node:os';
import { resolve } from 'node:path';
import type { BaseWeights, PlaygroundOutput, PlaygroundRequest, PlaygroundStarted, PlaygroundVariant } from '../../common/protocol.ts';
import { describeBase, trainingBaseWeights, type TrainedBase } from '../io/base-weights.ts';
import { cpuBackendInfo, cpuSharedMemoryWanted } from '../backend/cpu/cpu-ops.ts';
import { loadModel, loadTokenizer, modelStamp, weightBytesF32 } from '../io/model-source.ts';
import { loadAdapter } from '../io/peft-adapter.ts';
import type { LoraWeights, ModelWeights, Tokenizer } from '../model/types.ts';
import { selectBackend } from '../train/backend-select.ts';
import { generate, type GenerateOptions } from './generate.ts';
import { formatPrompt } from './prompt-format.ts';
import { generateWebgpu } from './webgpu-generate.ts';

/** An error that names the request field it is about (the UI marks that field). */
export class PlaygroundError extends Error {
  readonly field: string;
  constructor(message: string, field: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PlaygroundError';
    this.field = field;
  }
}

export interface PlaygroundHooks {
  started(info: Omit<PlaygroundStarted, 'jobId'>): void;
  output(o: Omit<PlaygroundOutput, 'jobId'>): void;
  /** Polled at every token; true stops the job. */
  cancelled(): boolean;
  /** Milliseconds between streamed updates of one variant (the last one is always sent); default 50. */
  intervalMs?: number;
}

interface Loaded {
  key: string;
  model: ModelWeights;
  tokenizer: Tokenizer;
}

function withField<T>(field: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    // Errors that already name their field (PromptFormatError: prompt, history.3.role…) keep it.
    if (e instanceof PlaygroundError || (e instanceof Error && typeof (e as Error & { field?: unknown }).field === 'string')) throw e;
    throw new PlaygroundError(e instanceof Error ? e.message : String(e), field, { cause: e });
  }
}

/** f32 weights unless they would take over 40 % of the machine's memory; then frozen weights stay f16. */
function wantsF16(dir: string): boolean {
  const bytes = weightBytesF32(dir);
  return bytes !== null && bytes > 0.4 * totalmem();
}

export class PlaygroundEngine {
  private loaded: Loaded | null = null;

  /**
   * `shared`: in shared memory for the cpu thread pool (never for webgpu, which cannot upload from it).
   * `trained`: the base as the adapter's run held it (trainingBaseWeights, its mixed plan included); null: f32, or f16 for a model too large.
   */
  private async load(modelPath: string, shared: boolean, trained: TrainedBase | null): Promise<Loaded> {
    const dir = resolve(modelPath);
    const key = withField('modelPath', () => `${modelStamp(dir)}:${shared}:${trained ? describeBase(trained) : 'auto'}`);
    if (this.loaded?.key === key) return this.loaded;
    this.loaded = null;
    const weights: BaseWeights = trained?.baseWeights ?? (wantsF16(dir) ? 'f16' : 'f32');
    const model = withField('modelPath', () => loadModel(dir, { dtype: Float32Array, baseWeights: weights, baseWeightsKeep: trained?.keep ?? null, shared }));
    let tokenizer: Tokenizer | null;
    try {
      tokenizer = await loadTokenizer(dir);
    } catch (e) {
      throw new PlaygroundError(e instanceof Error ? e.message : String(e), 'modelPath', { cause: e });
    }
    if (!tokenizer) throw new PlaygroundError(`${dir} has no tokenizer (tokenizer.json), so the prompt cannot be tokenized`, 'modelPath');
    this.loaded = { key, model, tokenizer };
    return this.loaded;
  }

  /** Resolves when the job has ended; `cancelled` says whether it was stopped. Throws PlaygroundError / load errors. */
  async run(req: PlaygroundRequest, hooks: PlaygroundHooks): Promise<{ cancelled: boolean }> {
    const chosen = await selectBackend(req.backend);
    const base = req.adapterPath ? trainingBaseWeights(req.adapterPath, req.modelPath) : null;
    const { model, tokenizer } = await this.load(req.modelPath, chosen.backend === 'cpu' && cpuSharedMemoryWanted(), base);
    const lora: LoraWeights | null = req.adapterPath ? withField('adapterPath', () => loadAdapter(req.adapterPath as string, model.config)) : null;
    // A second adapter to compare must fit the same base model (its layers and shapes are checked as it loads).
    const second: LoraWeights | null = lora && req.compareAdapterPath ? withField('compareAdapterPath', () => loadAdapter(req.compareAdapterPath as string, model.config)) : null;
    const prompt = withField('prompt', () => formatPrompt(tokenizer, model.config, req));
    const variants: PlaygroundVariant[] = lora ? ['adapter', ...(second ? (['compare'] as const) : []), ...(req.compareBase ? (['base'] as const) : [])] : ['base'];
    hooks.started({
      backend: chosen.backend === 'webgpu' ? `webgpu (${chosen.adapterName ?? 'adapter'})` : cpuBackendInfo().label,
      promptText: prompt.text,
      promptTokens: prompt.ids.length,
      variants,
    });
    const interval = hooks.intervalMs ?? 50;
    for (const variant of variants) {
      if (hooks.cancelled()) {
        hooks.output({ variant, text: '', tokens: 0, tokensPerSecond: null, prefillMs: null, stop: 'cancelled' });
        continue;
      }
      const ids: number[] = [];
      const t0 = performance.now();
      // The first token comes out of the prefill; decode speed counts only the tokens after it, over their own time.
      let tFirst: number | null = null;
      let lastSent = -Infinity;
      let stopped = false;
      const send = (stop: PlaygroundOutput['stop']): void => {
        const decodeS = tFirst !== null ? (performance.now() - tFirst) / 1000 : 0;
        const tokensPerSecond = ids.length > 1 && decodeS > 0 ? (ids.length - 1) / decodeS : null;
        hooks.output({ variant, text: tokenizer.decode(ids, { skipSpecialTokens: true }), tokens: ids.length, tokensPerSecond, prefillMs: tFirst !== null ? tFirst - t0 : null, stop });
      };
      const opts: GenerateOptions = {
        maxNewTokens: req.maxNewTokens,
        temperature: req.temperature,
        topP: req.topP,
        seed: req.seed,
        eosTokenIds: prompt.stopIds,
        onToken: (id) => {
          ids.push(id);
          tFirst ??= performance.now();
          if (hooks.cancelled()) {
            stopped = true;
            return false;
          }
          const now = performance.now();
          if (now - lastSent >= interval) {
            lastSent = now;
            send(null);
          }
          return true;
        },
      };
      const adapter = variant === 'adapter' ? lora : variant === 'compare' ? second : null;
      if (chosen.backend === 'webgpu') await generateWebgpu(model, adapter, prompt.ids, opts);
      else generate(model, adapter, prompt.ids, opts);
      const last = ids.at(-1);
      send(stopped ? 'cancelled' : last !== undefined && prompt.stopIds.includes(last) ? 'eos' : 'length');
    }
    return { cancelled: hooks.cancelled() };
  }
}
