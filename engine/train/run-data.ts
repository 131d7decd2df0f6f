/**
 * A run's dataset exactly as its training prepares it: the same options to prepareDataset and the same padding id.
 * The trainer (run-training.ts) and the exported Accelerate bundle (engine/export) both go through here, so the
 * bundle's token ids, labels, split and packing cannot drift from what the studio would have trained on.
 */
import type { RunConfig } from '../../common/protocol.ts';
import { prepareDataset, type PrepareOptions, type PreparedDataset } from '../data/prepare.ts';
import type { ModelConfig, Tokenizer } from '../model/types.ts';
import { trainerSettings } from './run-config.ts';

export function prepareRunDataset(config: RunConfig, tokenizer: Tokenizer | null, opts: { badRecordsWhenUnset?: 'skip' | 'fail' } = {}): Promise<PreparedDataset> {
  return prepareDataset(runPrepareOptions(config, tokenizer, opts));
}

/** The options a run prepares its dataset with (run-data-cache.ts keys its cache on exactly these). */
export function runPrepareOptions(config: RunConfig, tokenizer: Tokenizer | null, opts: { badRecordsWhenUnset?: 'skip' | 'fail' } = {}): PrepareOptions {
  const settings = trainerSettings(config);
  return {
    path: config.datasetPath,
    format: config.datasetFormat,
    tokenizer,
    maxSeqLen: settings.maxSeqLen,
    validationPercent: config.train.validationPercent,
    seed: settings.seed,
    // The app checks datasets before a run starts (the services' preflight passes 'fail': bad records are refused
    // unless the user chose to skip them); a headless run without data settings keeps going past them and says so.
    badRecords: config.data?.badRecords ?? opts.badRecordsWhenUnset ?? 'skip',
    trainOn: config.data?.trainOn ?? 'auto',
    packing: config.data?.packing ?? false,
    ...(config.data?.validationPath ? { validationPath: config.data.validationPath } : {}),
  };
}

/** The id right-padding uses in a batch (its labels are −100, so it never reaches the loss). */
export function runPadTokenId(tokenizer: Tokenizer | null, model: ModelConfig): number {
  return tokenizer?.padTokenId ?? model.padTokenId ?? tokenizer?.eosTokenId ?? 0;
}
