/** The registry of weight formats the lab compares and the GGUF writer stores. */
import type { QuantFormat } from './format-common.ts';
import { f16Format } from './f16.ts';
import { int8Format } from './int8.ts';
import { int4Format } from './int4.ts';
import { nf4Format } from './nf4.ts';
import { q8_0Format } from './ggml-q8_0.ts';
import { q4_0Format } from './ggml-q4_0.ts';
import { q4_1Format } from './ggml-q4_1.ts';

export type { QuantFormat } from './format-common.ts';

// The names are the contract's list (requests are checked against it); the registry below must have each of them.
import { isQuantFormatName, QUANT_FORMAT_NAMES, type QuantFormatName } from '../../common/quant-formats.ts';
export { isQuantFormatName, QUANT_FORMAT_NAMES, type QuantFormatName };

export const QUANT_FORMATS: Readonly<Record<QuantFormatName, QuantFormat>> = {
  f16: f16Format,
  int8: int8Format,
  'int4-g128': int4Format,
  nf4: nf4Format,
  q8_0: q8_0Format,
  q4_0: q4_0Format,
  q4_1: q4_1Format,
};

export function getFormat(name: string): QuantFormat {
  if (!isQuantFormatName(name)) throw new Error(`unknown quantization format '${name}' (known: ${QUANT_FORMAT_NAMES.join(', ')})`);
  return QUANT_FORMATS[name];
}

/** Parses a comma-separated list (`f16,int8,q4_0`), rejecting unknown and repeated names. */
export function parseFormatList(list: string): QuantFormatName[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) throw new Error(`no formats given (known: ${QUANT_FORMAT_NAMES.join(', ')})`);
  const out: QuantFormatName[] = [];
  for (const n of names) {
    if (!isQuantFormatName(n)) throw new Error(`unknown quantization format '${n}' (known: ${QUANT_FORMAT_NAMES.join(', ')})`);
    if (out.includes(n)) throw new Error(`format '${n}' is listed twice`);
    out.push(n);
  }
  return out;
}
