/**
 * One entry point for "a model the user chose": a Hugging Face folder (config.json + safetensors) or a GGUF file
 * (llama.cpp, LM Studio, an Ollama blob, which has no extension: recognised by its magic). Every loader of the
 * studio goes through here, so a GGUF trains, generates, is measured and exported like a folder.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ModelSummary } from '../../common/protocol.ts';
import type { ModelConfig, ModelWeights, Tokenizer } from '../model/types.ts';
import { readGguf } from '../quant/gguf-reader.ts';
import type { BaseWeights, BaseWeightsKeep } from '../../common/protocol.ts';
import { ggufStoredTypes, planBaseWeights, type BasePlan } from './base-weights.ts';
import { ggufModelConfig, ggufTensorName, inspectGgufModel, isGgufFile, loadGgufModel } from './gguf-model.ts';
import { readHfConfig } from './hf-config.ts';
import { inspectModel as inspectHfModel, loadModel as loadHfModel, locateWeights, ModelLoadError, type LoadModelOptions } from './hf-model.ts';
import { loadTokenizer as loadHfTokenizer } from './tokenizer.ts';
import { loadGgufTokenizer } from './tokenizer-gguf.ts';

export type { LoadModelOptions } from './hf-model.ts';
export { isGgufFile } from './gguf-model.ts';

/** 'gguf' for a GGUF file, 'hf' for anything else (a folder; its own loader reports what is wrong with it). */
export function modelFormat(path: string): 'gguf' | 'hf' {
  return isGgufFile(path) ? 'gguf' : 'hf';
}

function notAFolderOrGguf(path: string): void {
  if (existsSync(path) && statSync(path).isFile()) {
    throw new ModelLoadError(`${path} is a file but not a GGUF model; choose a GGUF file or a Hugging Face model folder (config.json + *.safetensors)`);
  }
}

export function loadModel(path: string, opts: LoadModelOptions = {}): ModelWeights {
  if (isGgufFile(path)) return loadGgufModel(path, opts);
  notAFolderOrGguf(path);
  return loadHfModel(path, opts);
}

export function inspectModel(path: string): ModelSummary {
  if (isGgufFile(path)) return inspectGgufModel(path);
  notAFolderOrGguf(path);
  return { ...inspectHfModel(path), format: 'hf' };
}

/** The model's config without reading weights. */
export function readModelConfig(path: string): ModelConfig {
  if (isGgufFile(path)) return ggufModelConfig(readGguf(resolve(path)));
  notAFolderOrGguf(path);
  return readHfConfig(path);
}

/**
 * How a base-weights setting holds each frozen matrix of this model, from the file's headers only (no weights are
 * read): what loadModel will do, for the memory estimate. Throws BaseWeightsError naming a tensor a format cannot hold.
 */
export function basePlanOf(path: string, setting: BaseWeights, keep: BaseWeightsKeep | null = null): BasePlan {
  if (isGgufFile(path)) {
    const file = readGguf(resolve(path));
    return planBaseWeights(ggufModelConfig(file), setting, ggufStoredTypes(file, ggufTensorName), keep);
  }
  notAFolderOrGguf(path);
  const config = readHfConfig(path);
  if (setting !== 'as-stored') return planBaseWeights(config, setting, null, keep);
  const { infos } = locateWeights(resolve(path));
  return planBaseWeights(config, setting, { kind: 'hf', dtypeOf: (name) => infos.get(name)?.dtype ?? 'F32' }, keep);
}

/** The model's tokenizer: from a folder's tokenizer.json, or from a GGUF's metadata; null when a folder has none. */
export async function loadTokenizer(path: string): Promise<Tokenizer | null> {
  if (isGgufFile(path)) return loadGgufTokenizer(resolve(path));
  return loadHfTokenizer(path);
}

/** A stamp that changes when the model on disk changes (the playground reloads then). */
export function modelStamp(path: string): string {
  const p = resolve(path);
  if (isGgufFile(p)) return `${p}:${statSync(p).mtimeMs}:${statSync(p).size}`;
  return `${p}:${statSync(join(p, 'config.json')).mtimeMs}`;
}

/** Bytes the weights take as fp32 (for choosing f16 frozen weights), or null when that cannot be told cheaply. */
export function weightBytesF32(path: string): number | null {
  try {
    if (isGgufFile(path)) return readGguf(resolve(path)).tensors.reduce((a, t) => a + 4 * t.dims.reduce((x, y) => x * y, 1), 0);
    let bytes = 0;
    for (const f of readdirSync(path)) if (f.endsWith('.safetensors')) bytes += statSync(join(path, f)).size;
    // Stored f16/bf16 weights double in f32 (f32 files are overcounted, which only errs toward f16).
    return bytes * 2;
  } catch {
    return null;
  }
}
