/**
 * The portable cpu backend, where the native kernels are not built: the reference ops (engine/model/), with the big
 * products and attention split over worker threads on shared memory (thread-pool.ts) when the model was loaded there.
 * Bit-identical to the reference for any thread count.
 */
import * as crossEntropy from '../../model/cross-entropy.ts';
import * as linear from '../../model/linear.ts';
import { referenceOps, type ModelOps } from '../../model/ops.ts';
import * as attention from './attention-split.ts';
import { poolMatmuls } from './matmul.ts';
import { sharedCtor } from './shared-arrays.ts';

const SharedF64 = sharedCtor(Float64Array);

export const PORTABLE_NAME = 'portable, slow';

/** `shared`: allocate activations in shared memory so the pool can split the products (the model is there too). */
export function portableOps(shared: boolean): ModelOps {
  // The name is what the UI shows after "cpu": it says the run is slow and why to build the addon (the thread count is
  // in the run log).
  if (!shared) return { ...referenceOps, name: PORTABLE_NAME };
  return {
    ...referenceOps,
    name: PORTABLE_NAME,
    floats: (F, n) => new (sharedCtor(F))(n),
    lse: (n) => new SharedF64(n) as Float64Array,
    linearForward: (y, u, xd, x, lin, lora, scaling, mask, M) => linear.forward(y, u, xd, x, lin, lora, scaling, mask, M, poolMatmuls),
    linearBackward: (dx, dA, dB, dY, u, xd, x, lin, lora, scaling, mask, M) => linear.backward(dx, dA, dB, dY, u, xd, x, lin, lora, scaling, mask, M, poolMatmuls),
    attentionForward: attention.forward,
    attentionBackward: attention.backward,
    crossEntropy: (dHidden, hidden, lmHead, targets, s, gradScale) =>
      dHidden === null ? crossEntropy.forward(null, hidden, lmHead, targets, s, poolMatmuls) : crossEntropy.forwardBackward(dHidden, null, hidden, lmHead, targets, s, gradScale, poolMatmuls),
  };
}
