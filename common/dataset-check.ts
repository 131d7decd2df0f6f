/** Messages between the services' preflight and the dataset-check worker (engine/train/dataset-check-worker.ts). */
import type { RunConfig } from './protocol.ts';

export interface DatasetCheckCommand {
  /** Matches the reply to its request (one worker answers the checks of several run starts). */
  id: number;
  config: RunConfig;
  /** The studio's dataset cache, where the prepared dataset is kept for the engine; null keeps nothing. */
  cacheDir: string | null;
}

/** What a thrown error carried that the services' StudioError keeps (errors.ts reads exactly these). */
export interface DatasetCheckProblem {
  message: string;
  file?: string;
  line?: number;
  field?: string;
}

export type DatasetCheckReply =
  | { type: 'ok'; id: number; tokenized: boolean; kept: boolean }
  /** 'tokenizer': the model's tokenizer could not be loaded; 'data': preparing the dataset refused it. */
  | { type: 'refused'; id: number; stage: 'tokenizer' | 'data'; problem: DatasetCheckProblem };
