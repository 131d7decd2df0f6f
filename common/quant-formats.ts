/**
 * The quantization formats and modes requests may name: the contract's own lists (common/request-schemas.ts checks
 * requests against them); the engine's format registry (engine/quant/format.ts) and GGUF LoRA writer import them
 * from here, so a format added to the engine is added to what requests accept in the same edit.
 */

/** Weight formats the lab compares and the GGUF writer stores (registry keys of engine/quant/format.ts). */
export const QUANT_FORMAT_NAMES = ['f16', 'int8', 'int4-g128', 'nf4', 'q8_0', 'q4_0', 'q4_1'] as const;
export type QuantFormatName = (typeof QUANT_FORMAT_NAMES)[number];

export function isQuantFormatName(name: string): name is QuantFormatName {
  return (QUANT_FORMAT_NAMES as readonly string[]).includes(name);
}

export const QUANT_ADAPTER_MODES = ['merged', 'on-quantized'] as const;
/** merged: quantize W + s·BA; on-quantized: keep the adapter in fp32 on top of the quantized base. */
export type QuantAdapterMode = (typeof QUANT_ADAPTER_MODES)[number];

/** Element types of a GGUF LoRA file ('adapters.exportGguf', engine/quant/gguf-lora.ts). */
export const LORA_GGUF_DTYPES = ['f32', 'f16'] as const;
export type LoraGgufDtype = (typeof LORA_GGUF_DTYPES)[number];
