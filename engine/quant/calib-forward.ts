/**
 * A forward pass of the llama-family decoder that stops after each layer and hands out what the quantization lab
 * compares: the output of every linear (q, k, v, o, gate, up, down, before RoPE and residuals) and the layer's output
 * (the residual stream). Built from the same op files as engine/model/llama.ts, so the numbers are the model's own.
 * Two instances (float and quantized) can be stepped in lockstep, keeping one layer of activations alive at a time.
 */
import * as attention from '../model/attention.ts';
import * as embedding from '../model/embedding.ts';
import * as linear from '../model/linear.ts';
import * as rmsnorm from '../model/rmsnorm.ts';
import * as rope from '../model/rope.ts';
import * as swiglu from '../model/swiglu.ts';
import type { Linear, LoraPair, LoraWeights, ModelWeights } from '../model/types.ts';
import { MATRIX_TARGET, type MatrixName } from '../../common/lora-targets.ts';

export { MATRIX_NAMES, MATRIX_TARGET, type MatrixName } from '../../common/lora-targets.ts';

export interface LayerStep {
  /** Output of each linear, [B·T, out]. */
  linears: Record<MatrixName, Float32Array>;
  /** The layer's output (residual stream), [B·T, H]. */
  hidden: Float32Array;
}

export class CalibForward {
  readonly M: number;
  private x: Float32Array;
  private next = 0;
  private readonly tables: rope.RopeTables;

  constructor(
    private readonly model: ModelWeights,
    private readonly lora: LoraWeights | null,
    inputIds: Int32Array,
    private readonly B: number,
    private readonly T: number,
  ) {
    const c = model.config;
    if (inputIds.length !== B * T) throw new Error(`calibration forward: ${inputIds.length} ids, expected ${B} × ${T}`);
    if (!(model.embedTokens instanceof Float32Array)) throw new Error('calibration forward: the model must be loaded as Float32Array');
    this.M = B * T;
    this.x = new Float32Array(this.M * c.hiddenSize);
    embedding.forward(this.x, inputIds, model.embedTokens, this.M, c.hiddenSize);
    this.tables = rope.ropeTables({ headDim: c.headDim, ropeTheta: c.ropeTheta, ropeScaling: c.ropeScaling }, T, true);
  }

  private project(l: number, m: MatrixName, lin: Linear, x: Float32Array): Float32Array {
    const y = new Float32Array(this.M * lin.outFeatures);
    const pair: LoraPair | undefined = this.lora?.layers[l]?.[MATRIX_TARGET[m]];
    if (pair && this.lora) {
      const r = this.lora.config.r;
      linear.forward(y, new Float32Array(this.M * r), null, x, lin, pair, this.lora.scaling, null, this.M);
    } else {
      linear.forward(y, null, null, x, lin, null, 0, null, this.M);
    }
    return y;
  }

  /** Runs the next layer. */
  step(): LayerStep {
    const l = this.next++;
    const c = this.model.config;
    if (l >= c.numLayers) throw new Error(`calibration forward: the model has only ${c.numLayers} layers`);
    const L = this.model.layers[l];
    const { M, B, T } = this;
    const H = c.hiddenSize;
    const eps = c.rmsNormEps;
    const xn = new Float32Array(M * H);
    rmsnorm.forward(xn, new Float32Array(M), this.x, L.inputNorm, M, H, eps);
    const q = this.project(l, 'q', L.q, xn);
    const k = this.project(l, 'k', L.k, xn);
    const v = this.project(l, 'v', L.v, xn);
    const qr = new Float32Array(q);
    const kr = new Float32Array(k);
    if (c.qkNorm) {
      if (!L.qNorm || !L.kNorm) throw new Error(`calibration forward: layer ${l} lacks q_norm/k_norm`);
      rmsnorm.forward(qr, new Float32Array(M * c.numHeads), q, L.qNorm, M * c.numHeads, c.headDim, eps);
      rmsnorm.forward(kr, new Float32Array(M * c.numKvHeads), k, L.kNorm, M * c.numKvHeads, c.headDim, eps);
    }
    rope.forward(qr, qr, this.tables, B, T, c.numHeads, c.headDim);
    rope.forward(kr, kr, this.tables, B, T, c.numKvHeads, c.headDim);
    const att = new Float32Array(M * c.numHeads * c.headDim);
    attention.forward(att, null, qr, kr, v, {
      batch: B,
      queryLen: T,
      keyLen: T,
      nHeads: c.numHeads,
      nKvHeads: c.numKvHeads,
      headDim: c.headDim,
      window: c.slidingWindow,
    });
    const o = this.project(l, 'o', L.o, att);
    const h = new Float32Array(M * H);
    for (let i = 0; i < h.length; i++) h[i] = this.x[i] + o[i];
    const xn2 = new Float32Array(M * H);
    rmsnorm.forward(xn2, new Float32Array(M), h, L.postAttentionNorm, M, H, eps);
    const gate = this.project(l, 'gate', L.gate, xn2);
    const up = this.project(l, 'up', L.up, xn2);
    const a = new Float32Array(M * c.intermediateSize);
    swiglu.forward(a, gate, up, a.length);
    const down = this.project(l, 'down', L.down, a);
    const y = new Float32Array(M * H);
    for (let i = 0; i < y.length; i++) y[i] = h[i] + down[i];
    this.x = y;
    return { linears: { q, k, v, o, gate, up, down }, hidden: y };
  }

  /** Final RMSNorm of the last layer's output, [B·T, H]; call after every layer has run. */
  finalHidden(): Float32Array {
    const c = this.model.config;
    if (this.next !== c.numLayers) throw new Error(`calibration forward: ${this.next} of ${c.numLayers} layers have run`);
    const out = new Float32Array(this.M * c.hiddenSize);
    rmsnorm.forward(out, new Float32Array(this.M), this.x, this.model.norm, this.M, c.hiddenSize, c.rmsNormEps);
    return out;
  }
}

/** Logits of rows [r0, r1) of the final hidden states, [r1 − r0, V]. */
export function logitsRows(model: ModelWeights, hn: Float32Array, r0: number, r1: number): Float32Array {
  const { hiddenSize: H, vocabSize: V } = model.config;
  const out = new Float32Array((r1 - r0) * V);
  linear.forward(out, null, null, hn.subarray(r0 * H, r1 * H), { weight: model.lmHead, bias: null, outFeatures: V, inFeatures: H }, null, 0, null, r1 - r0);
  return out;
}
