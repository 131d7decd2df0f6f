/**
 * What a merged export says it merged: the base as the merge read it (a GGUF's quantized blocks dequantized to f32,
 * or a folder's floats), plus scaling·B·A of the adapter, and the format the result was written in (re-quantized when
 * that is a quantized format). With an adapter trained on a quantized base (QLoRA), the base it learned on is named
 * too: the merge is into the dequantized base, which is what the adapter saw up to its own rounding.
 */
import { basename, resolve } from 'node:path';
import { describeBase, trainingBaseWeights } from '../io/base-weights.ts';
import { ggufQuantization, isGgufFile } from '../io/gguf-model.ts';
import type { GgufKv } from '../quant/gguf-writer.ts';
import { readGguf } from '../quant/gguf-reader.ts';

export interface MergedNote {
  /** One sentence for general.description / a README. */
  text: string;
  kvs: GgufKv[];
}

export function mergedExportNote(modelPath: string, adapterDir: string, writtenAs: string): MergedNote {
  const gguf = isGgufFile(modelPath);
  const stored = gguf ? ggufQuantization(readGguf(resolve(modelPath))) : null;
  const base = basename(resolve(modelPath));
  const trainedOn = trainingBaseWeights(adapterDir, modelPath);
  const read = gguf ? `${base} (GGUF, ${stored}) dequantized to f32` : `${base} in f32`;
  const requant = writtenAs === 'f16' ? 'written in F16' : `re-quantized to ${writtenAs.toUpperCase()}`;
  const trained = trainedOn && (trainedOn.baseWeights !== 'f32' || trainedOn.keep) ? `; the adapter was trained on this base held as ${describeBase(trainedOn)}` : '';
  const text = `merged: ${read} + scaling·B·A of the LoRA adapter ${basename(resolve(adapterDir))}, linears ${requant}${trained}`;
  const str = (value: string): GgufKv['value'] => ({ type: 'string', value });
  const kvs: GgufKv[] = [
    { key: 'general.description', value: str(text) },
    { key: 'lora_studio.merge.base', value: str(base) },
    { key: 'lora_studio.merge.base_dequantized_from', value: str(stored ?? 'float') },
    { key: 'lora_studio.merge.adapter', value: str(basename(resolve(adapterDir))) },
    { key: 'lora_studio.merge.written_as', value: str(writtenAs) },
    ...(trainedOn ? [{ key: 'lora_studio.merge.adapter_trained_on', value: str(describeBase(trainedOn)) }] : []),
  ];
  return { text, kvs };
}
