/**
 * The model's ops (engine/model/ops.ts) on the native kernels: f32 activations, f32 or f16 frozen weights, threads
 * inside the addon. Results are the same bits for any thread count and on every instruction set (native/src/simd.h),
 * and agree with the reference ops (f64 sums) to f32 rounding: test/engine/native-kernels.test.ts states the bounds.
 * Element-wise f64 work (RoPE, the dropout masks, AdamW) is bit-identical to the reference.
 */
import type { AttentionShape } from '../../model/attention.ts';
import type { CrossEntropyResult, CrossEntropyShape } from '../../model/cross-entropy.ts';
import type { DropoutMask } from '../../model/linear.ts';
import type { ModelOps } from '../../model/ops.ts';
import type { RopeTables } from '../../model/rope.ts';
import { PACKED_WTYPE, PackedWeight } from '../../model/packed-rows.ts';
import { F16Array, IGNORE_INDEX, type FloatArray, type Linear, type LinearWeight, type LoraPair, type WeightArray } from '../../model/types.ts';
import type { NativeCpu } from './native.ts';

function f32(a: FloatArray, what: string): Float32Array {
  if (!(a instanceof Float32Array)) throw new Error(`native cpu kernels: ${what} must be a Float32Array (the native path computes in f32)`);
  return a;
}

function weight(w: WeightArray, what: string): Float32Array | Uint16Array {
  return w instanceof F16Array ? w.bits : f32(w, what);
}

/** A Linear's weight for the addon: its data, and the packed format id (null for f32 / f16). */
function linearWeight(w: LinearWeight, what: string): [Float32Array | Uint16Array | Uint8Array, number | null] {
  if (w instanceof PackedWeight) return [w.bytes, PACKED_WTYPE[w.format]];
  return [weight(w, what), null];
}

function exact(a: Float32Array, n: number): Float32Array {
  return a.length === n ? a : a.subarray(0, n);
}

function checkRope(tables: RopeTables, headDim: number, last: number): void {
  if (headDim / 2 !== tables.half) throw new Error(`rope: head_dim ${headDim} does not match the table (${tables.half * 2})`);
  if (last > tables.positions) throw new Error(`rope: position ${last - 1} is beyond the table (${tables.positions} positions)`);
}

/** Rows of f32 logits per cross-entropy chunk: about 64 MiB (fewer passes over lm_head; PyTorch keeps all the logits and their gradient). */
export function nativeChunkRows(vocab: number): number {
  return Math.max(1, Math.floor((1 << 24) / Math.max(1, vocab)));
}

export function nativeOps(n: NativeCpu): ModelOps {
  const info = n.info();
  return {
    name: `native ${info.isa}, ${info.threads} thread${info.threads === 1 ? '' : 's'}`,
    floats: (F, len) => {
      if (F !== Float32Array) throw new Error(`native cpu kernels compute in f32; a ${F.name} model needs the reference ops`);
      return new Float32Array(len);
    },
    lse: (len) => new Float32Array(len),
    ceChunkRows: nativeChunkRows,
    embedding(out, ids, table, N, C) {
      const bad = n.embeddingForward(f32(out, 'out'), ids, weight(table, 'embedding'), N, C);
      if (bad >= 0) throw new Error(`embedding: token id ${ids[bad]} at position ${bad} is outside the vocabulary [0, ${Math.floor(table.length / C)})`);
    },
    rmsnormForward: (out, rstd, x, w, N, C, eps) => n.rmsnormForward(f32(out, 'out'), f32(rstd, 'rstd'), f32(x, 'x'), f32(w, 'norm weight'), N, C, eps),
    rmsnormBackward: (dx, dOut, x, w, rstd, N, C) => n.rmsnormBackward(f32(dx, 'dx'), f32(dOut, 'dOut'), f32(x, 'x'), f32(w, 'norm weight'), f32(rstd, 'rstd'), N, C),
    linearForward(y: FloatArray, u: FloatArray | null, xd: FloatArray | null, x: FloatArray, lin: Linear, lora: LoraPair | null, scaling: number, mask: DropoutMask | null, M: number) {
      const { inFeatures: K, outFeatures: N } = lin;
      const r = lora === null ? 0 : lora.A.length / K;
      const [w, format] = linearWeight(lin.weight, 'weight');
      n.linearForward(
        f32(y, 'y'),
        u === null ? null : f32(u, 'u'),
        xd === null ? null : f32(xd, 'xd'),
        f32(x, 'x'),
        w,
        lin.bias === null ? null : f32(lin.bias, 'bias'),
        lora === null ? null : f32(lora.A, 'lora_A'),
        lora === null ? null : f32(lora.B, 'lora_B'),
        r,
        scaling,
        mask === null ? null : mask.keep,
        mask === null ? 1 : mask.scale,
        M,
        K,
        N,
        format,
      );
    },
    linearBackward(dx, dA, dB, dY, u, xd, x, lin, lora, scaling, mask, M) {
      const { inFeatures: K, outFeatures: N } = lin;
      const r = lora === null ? 0 : lora.A.length / K;
      const [w, format] = linearWeight(lin.weight, 'weight');
      n.linearBackward(
        dx === null ? null : f32(dx, 'dx'),
        dA === null ? null : f32(dA, 'dA'),
        dB === null ? null : f32(dB, 'dB'),
        f32(dY, 'dY'),
        u === null ? null : f32(u, 'u'),
        xd === null ? null : f32(xd, 'xd'),
        f32(x, 'x'),
        w,
        lora === null ? null : f32(lora.A, 'lora_A'),
        lora === null ? null : f32(lora.B, 'lora_B'),
        r,
        scaling,
        mask === null ? null : mask.keep,
        mask === null ? 1 : mask.scale,
        M,
        K,
        N,
        format,
      );
    },
    ropeForward(out, x, tables, B, T, nHeads, headDim, posOffset) {
      checkRope(tables, headDim, posOffset + T);
      n.ropeForward(f32(out, 'out'), f32(x, 'x'), tables.cos, tables.sin, tables.half, B, T, nHeads, posOffset);
    },
    ropeBackward(dx, dOut, tables, B, T, nHeads, headDim, posOffset) {
      checkRope(tables, headDim, posOffset + T);
      n.ropeBackward(f32(dx, 'dx'), f32(dOut, 'dOut'), tables.cos, tables.sin, tables.half, B, T, nHeads, posOffset);
    },
    attentionForward(out, lse, q, k, v, s: AttentionShape) {
      n.attentionForward(f32(out, 'out'), lse === null ? null : f32(lse, 'lse'), f32(q, 'q'), f32(k, 'k'), f32(v, 'v'), s.batch, s.queryLen, s.keyLen, s.nHeads, s.nKvHeads, s.headDim, s.window ?? 0);
    },
    attentionBackward(dq, dk, dv, dOut, out, lse, q, k, v, s: AttentionShape) {
      n.attentionBackward(f32(dq, 'dq'), f32(dk, 'dk'), f32(dv, 'dv'), f32(dOut, 'dOut'), f32(out, 'out'), f32(lse, 'lse'), f32(q, 'q'), f32(k, 'k'), f32(v, 'v'), s.batch, s.queryLen, s.keyLen, s.nHeads, s.nKvHeads, s.headDim, s.window ?? 0);
    },
    swigluForward: (out, gate, up, len) => n.swigluForward(f32(out, 'out'), f32(gate, 'gate'), f32(up, 'up'), len),
    swigluBackward: (dGate, dUp, dOut, gate, up, len) => n.swigluBackward(f32(dGate, 'dGate'), f32(dUp, 'dUp'), f32(dOut, 'dOut'), f32(gate, 'gate'), f32(up, 'up'), len, true),
    crossEntropy(dHidden, hidden, lmHead, targets, s: CrossEntropyShape, gradScale): CrossEntropyResult {
      const { rows, hidden: C, vocab: V } = s;
      if (!(Number.isInteger(s.chunkRows) && s.chunkRows > 0)) throw new Error(`cross-entropy: chunkRows must be a positive integer, got ${s.chunkRows}`);
      if (lmHead.length !== V * C) throw new Error(`cross-entropy: lm_head has ${lmHead.length} values, expected vocab ${V} × hidden ${C}`);
      const active: number[] = [];
      for (let r = 0; r < rows; r++) {
        const t = targets[r];
        if (t === IGNORE_INDEX) continue;
        if (!(t >= 0 && t < V)) throw new Error(`cross-entropy: target ${t} at row ${r} is outside the vocabulary [0, ${V}) and is not ${IGNORE_INDEX}`);
        active.push(r);
      }
      const rowIds = Int32Array.from(active);
      const tgt = Int32Array.from(active, (r) => targets[r]);
      const losses = new Float64Array(active.length);
      n.crossEntropy(losses, dHidden === null ? null : f32(dHidden, 'dHidden'), exact(f32(hidden, 'hidden'), rows * C), weight(lmHead, 'lm_head'), rowIds, tgt, C, V, s.chunkRows, gradScale);
      let sumLoss = 0;
      for (const l of losses) sumLoss += l;
      return { sumLoss, count: active.length };
    },
    add: (out, a, b, len) => n.add(exact(f32(out, 'out'), len), exact(f32(a, 'a'), len), exact(f32(b, 'b'), len)),
    dropoutMasks: (seed, p, masks) => n.dropoutMasks(seed, p, masks),
  };
}
