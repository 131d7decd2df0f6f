/**
 * The run's fixed evaluation prompts (RunConfig.evalPrompts), answered greedily with the LoRA as it is at a step
 * boundary. Prompts are wrapped once, at the start, exactly as the Playground wraps them for this dataset's format
 * (engine/generate/prompt-format.ts), so a timeline answer is what the Playground would show for that adapter.
 *
 * Generation runs on the host through engine/generate/generate.ts on the cpu kernels, whatever backend trains: a
 * webgpu run's LoRA is pulled to the host first (the trainer does that for checkpoints anyway), and the host keeps
 * the model's weights, so no second copy of the model is uploaded to the device for a few short answers, and the
 * answers are the same tokens on either backend (greedy on fp32 host weights).
 */
import { promptFormatFor, evalDue } from '../../common/eval-prompts.ts';
import type { DatasetFormat, EvalPrompts, EvalSample } from '../../common/protocol.ts';
import { generate } from '../generate/generate.ts';
import { formatPrompt, type FormattedPrompt } from '../generate/prompt-format.ts';
import type { LoraWeights, ModelWeights, Tokenizer } from '../model/types.ts';

export interface EvalSamplerInit {
  model: ModelWeights;
  tokenizer: Tokenizer | null;
  evalPrompts: EvalPrompts;
  /** The format the dataset was read as (never 'auto'). */
  datasetFormat: Exclude<DatasetFormat, 'auto'>;
  /** The chat template that rendered the data: 'model' (its own) or a built-in name; null for non-chat data. */
  chatTemplate: string | null;
  runId: string;
}

export class EvalSampler {
  private readonly model: ModelWeights;
  private readonly tokenizer: Tokenizer;
  private readonly settings: EvalPrompts;
  private readonly formatted: FormattedPrompt[];
  private readonly runId: string;

  constructor(init: EvalSamplerInit) {
    if (!init.tokenizer) throw Object.assign(new Error('evaluation prompts need the model\'s tokenizer (tokenizer.json), and this model folder has none; turn the evaluation prompts off'), { field: 'evalPrompts' });
    this.model = init.model;
    this.tokenizer = init.tokenizer;
    this.settings = init.evalPrompts;
    this.runId = init.runId;
    const promptFormat = promptFormatFor(init.datasetFormat);
    const chatTemplate = init.chatTemplate !== null && init.chatTemplate !== 'model' ? init.chatTemplate : undefined;
    this.formatted = init.evalPrompts.prompts.map((prompt, i) => {
      try {
        return formatPrompt(init.tokenizer as Tokenizer, init.model.config, { prompt, promptFormat, ...(chatTemplate ? { chatTemplate } : {}) });
      } catch (e) {
        throw Object.assign(new Error(`evaluation prompt ${i + 1}: ${e instanceof Error ? e.message : String(e)}`), { field: `evalPrompts.prompts.${i}` });
      }
    });
  }

  due(step: number, totalSteps: number): boolean {
    return evalDue(step, this.settings.everySteps, totalSteps);
  }

  /**
   * Greedy answers of every prompt with `lora`; `post` gets each as soon as it is written. `stopping` is asked before
   * each prompt, after yielding to the event loop (where a worker's 'stop' message lands): a run asked to stop
   * (cancel, pause) does not wait for the remaining answers.
   */
  async answer(step: number, lora: LoraWeights | null, post: (s: EvalSample) => void, stopping: () => boolean = () => false): Promise<EvalSample[]> {
    const out: EvalSample[] = [];
    for (const [index, f] of this.formatted.entries()) {
      await new Promise<void>((r) => setImmediate(r));
      if (stopping()) break;
      const ids = generate(this.model, lora, f.ids, { maxNewTokens: this.settings.maxNewTokens, temperature: 0, topP: 1, seed: 0, eosTokenIds: f.stopIds });
      const last = ids.at(-1);
      const sample: EvalSample = {
        runId: this.runId,
        step,
        index,
        prompt: this.settings.prompts[index],
        answer: this.tokenizer.decode(ids, { skipSpecialTokens: true }),
        tokens: ids.length,
        stop: last !== undefined && f.stopIds.includes(last) ? 'eos' : 'length',
      };
      post(sample);
      out.push(sample);
    }
    return out;
  }
}
