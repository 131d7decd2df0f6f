/**
 * The engine as the node host (host/: the services, the web host, the CLI) sees it: every engine function, class and
 * type the host uses is exported here, and the host imports the engine through this file only (eslint.config.js
 * enforces it). What the host may rely on is therefore one list — a change to it is a change of the engine's
 * contract with its host, visible in review — and everything else under engine/ is free to move.
 * Worker entry files (engine/worker.ts and the other *-worker.ts files) are started by path, not imported.
 */
export { cpuOps, cpuSharedMemoryWanted } from './backend/cpu/cpu-ops.ts';
export { nativeStatus } from './backend/cpu/native.ts';
export { configuredThreads, cpuThreadsEnv } from './backend/cpu/thread-pool.ts';
export { WebgpuLlama } from './backend/webgpu/llama-step.ts';
export { BUILTIN_TEMPLATE_NAMES, isBuiltinTemplateName } from './data/chat-template.ts';
export type { BuiltinTemplateName } from './data/chat-template.ts';
export { inspectDataset } from './data/inspect.ts';
export { startEngine, startWorkerModule } from './engine-host.ts';
export { exportBundle } from './export/bundle.ts';
export { writeMergedGguf } from './export/merged-model.ts';
export type { MergedGgufResult } from './export/merged-model.ts';
export { exportForOllama } from './export/ollama-modelfile.ts';
export type { OllamaExport } from './export/ollama-modelfile.ts';
export { generate } from './generate/generate.ts';
export { formatPrompt } from './generate/prompt-format.ts';
export { generateWebgpu } from './generate/webgpu-generate.ts';
export { writeFileAtomic } from './io/atomic.ts';
export { describeBase } from './io/base-weights.ts';
export type { BasePlan } from './io/base-weights.ts';
export { roundToF16InPlace } from './io/f16.ts';
export { hubEndpoint, HubPullCancelled, pullFromHub } from './io/hf-hub-download.ts';
export type { HubPullProgress } from './io/hf-hub-download.ts';
export { discoverModels, modelStoreDirs } from './io/model-discovery.ts';
export { basePlanOf, inspectModel, isGgufFile, loadModel, loadTokenizer, readModelConfig } from './io/model-source.ts';
export { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadAdapter, parseAdapterKey, readAdapterConfig } from './io/peft-adapter.ts';
export { SafetensorsFile, writeSafetensors } from './io/safetensors.ts';
export { ensureSample, SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from './io/sample.ts';
export { evalLoss, lossAndGrads } from './model/llama.ts';
export { newLora } from './model/lora.ts';
export { F16Array, IGNORE_INDEX } from './model/types.ts';
export type { Batch, LinearWeight, LoraTargetName, LoraWeights, ModelWeights, Tokenizer, TrainingExample } from './model/types.ts';
export { calibrationTokens } from './quant/calib-text.ts';
export { parseFormatList, QUANT_FORMAT_NAMES, QUANT_FORMATS } from './quant/format.ts';
export { GGUF_EXPORT_FORMATS } from './quant/gguf-llama.ts';
export type { GgufExportFormat } from './quant/gguf-llama.ts';
export { exportAdapterGguf, LORA_GGUF_DTYPES } from './quant/gguf-lora.ts';
export type { LoraGgufDtype } from './quant/gguf-lora.ts';
export { PackedWeight } from './quant/packed-weight.ts';
export type { QuantReport } from './quant/report-types.ts';
export { quantReport } from './quant/report.ts';
export type { CalibrationTokens, QuantReportProgress } from './quant/report.ts';
export { describeBackends } from './train/backend-select.ts';
export type { AdapterProbe } from './train/backend-select.ts';
export { padBatch } from './train/batching.ts';
export { loraTensors } from './train/lora-params.ts';
export { estimateTrainingMemory, formatBytes } from './train/memory-estimate.ts';
export { prepareRunDataset } from './train/run-data.ts';
export { Rng } from './util/rng.ts';
