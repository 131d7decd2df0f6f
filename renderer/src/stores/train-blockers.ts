/**
 * Why Train cannot start now, as the sentences shown under the (disabled) button: the same reasons the services
 * would refuse the run for, known before the click, each naming its field by the label the form shows.
 */
import { describeFieldError } from '../../../common/field-labels.ts';
import type { DatasetSummary, ModelSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import type { ConnectionState } from '../client/transport.ts';
import type { FormCheck } from './form.ts';

export interface TrainBlockerInput {
  connection: ConnectionState;
  check: FormCheck;
  modelPath: string;
  model: ModelSummary | null;
  modelError: StudioErrorInfo | null;
  modelBusy: boolean;
  datasetPath: string;
  dataset: DatasetSummary | null;
  datasetError: StudioErrorInfo | null;
  datasetBusy: boolean;
  /** What a broken record does: with 'fail' the services refuse a dataset that has any. */
  badRecords: 'fail' | 'skip';
  /** The separate validation file, when one is chosen. */
  validationPath: string;
  validationError: StudioErrorInfo | null;
}

export interface TrainBlocker {
  /** The field the reason is about (the dotted config path), so the list can point at it. */
  field: string;
  message: string;
}

const trimmed = (s: string): string => s.trim().replace(/[.\s]+$/, '');

/** Empty when Train can start. */
export function trainBlockers(input: TrainBlockerInput): TrainBlocker[] {
  const out: TrainBlocker[] = [];
  if (input.connection !== 'open') out.push({ field: 'connection', message: 'The studio is not connected: waiting for it to answer' });

  if (!input.modelPath.trim()) out.push({ field: 'modelPath', message: 'Model: choose a model folder' });
  else if (input.modelBusy) out.push({ field: 'modelPath', message: 'Model: still loading' });
  else if (input.modelError) out.push({ field: 'modelPath', message: `Model: ${trimmed(input.modelError.message)}` });
  else if (!input.model) out.push({ field: 'modelPath', message: 'Model: press Load to check the folder you typed' });

  if (!input.datasetPath.trim()) out.push({ field: 'datasetPath', message: 'Dataset: choose a dataset file' });
  else if (input.datasetBusy) out.push({ field: 'datasetPath', message: 'Dataset: still being read' });
  else if (input.datasetError) out.push({ field: 'datasetPath', message: `Dataset: ${trimmed(input.datasetError.message)}` });
  else if (!input.dataset) out.push({ field: 'datasetPath', message: 'Dataset: press Load to check the file you typed' });
  else if (input.badRecords === 'fail') {
    const bad = input.dataset.badRecordCount ?? input.dataset.badRecords.length;
    if (bad > 0) out.push({ field: 'data.badRecords', message: `Dataset: ${bad} broken record${bad === 1 ? '' : 's'}; fix the file or choose to skip them` });
  }

  if (input.validationPath.trim() && input.validationError) {
    out.push({ field: 'data.validationPath', message: `Validation file: ${trimmed(input.validationError.message)}` });
  }

  if (!input.check.ok) {
    for (const [field, message] of Object.entries(input.check.errors)) {
      if (field === 'modelPath' || field === 'datasetPath') continue;
      out.push({ field, message: describeFieldError({ field, message }) });
    }
  }
  return out;
}
