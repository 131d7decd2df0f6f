/**
 * The LoRA tensors of a model as one ordered list, named with the keys of PEFT's adapter_model.safetensors. The
 * optimizer, the clipper, checkpoints and `eval-loss --grads` all walk LoRA weights (or gradients) in this order.
 */
import { LORA_TARGETS } from '../../common/protocol.ts';
import { adapterKey } from '../io/peft-adapter.ts';
import type { FloatArray, LoraWeights } from '../model/types.ts';

export interface NamedTensor {
  key: string;
  data: FloatArray;
  /** [rows, cols] as PyTorch stores it: A is [r, in], B is [out, r]. */
  shape: [number, number];
}

export function loraTensors(lora: LoraWeights): NamedTensor[] {
  const r = lora.config.r;
  const out: NamedTensor[] = [];
  lora.layers.forEach((layer, i) => {
    for (const target of LORA_TARGETS) {
      const pair = layer[target];
      if (!pair) continue;
      out.push({ key: adapterKey(i, target, 'A'), data: pair.A, shape: [r, pair.A.length / r] });
      out.push({ key: adapterKey(i, target, 'B'), data: pair.B, shape: [pair.B.length / r, r] });
    }
  });
  return out;
}
