/**
 * The Train form's "Base weights" choice in words: each option's label and the one line that says what it does, so
 * the select, its hint and the tests read the same table. QLoRA = a quantized base with f32 LoRA on top.
 */
import { BASE_WEIGHTS, type BaseWeights } from '../../../common/protocol.ts';

export const BASE_WEIGHT_CHOICES: readonly { value: BaseWeights; label: string; hint: string }[] = [
  { value: 'f32', label: 'f32', hint: 'the base model in full precision (the most memory)' },
  { value: 'f16', label: 'f16', hint: "half the base model's memory on cpu (webgpu holds floats as its precision says); values rounded to f16" },
  { value: 'as-stored', label: 'as stored', hint: "a GGUF's q8_0/q4_0/q4_1/q4_k/q6_k layers stay in their blocks (QLoRA on the file you run); a folder keeps its dtype" },
  { value: 'q8_0', label: 'quantize at load to Q8_0', hint: 'QLoRA: 8.5 bits a weight, close to f16' },
  { value: 'q4_0', label: 'quantize at load to Q4_0', hint: 'QLoRA: 4.5 bits a weight; rows must be multiples of 32' },
  { value: 'q4_1', label: 'quantize at load to Q4_1', hint: 'QLoRA: 5 bits a weight, with an offset per block of 32' },
  { value: 'nf4', label: 'quantize at load to NF4', hint: 'QLoRA as bitsandbytes does it: 4.5 bits a weight, blocks of 64' },
  { value: 'int4-g128', label: 'quantize at load to INT4 g128', hint: 'QLoRA: 4.2 bits a weight, groups of 128 along each row' },
];

/** The hint under the select for a choice. */
export function baseWeightsHint(b: BaseWeights): string {
  return BASE_WEIGHT_CHOICES.find((c) => c.value === b)?.hint ?? '';
}

/** Every setting the schema knows has its words (a new one without words fails the test, not the page). */
export function missingBaseWeightChoices(): BaseWeights[] {
  return BASE_WEIGHTS.filter((b) => !BASE_WEIGHT_CHOICES.some((c) => c.value === b));
}
