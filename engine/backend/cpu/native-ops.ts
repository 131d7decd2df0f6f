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
import { decodePackedRows, PACKED_WTYPE, PackedWeight } from '../../model/packed-rows.ts';
import { F16Array, IGNORE_INDEX, type FloatArray, type Linear, type LinearWeight, type LoraPair, type WeightArray } from '../../model/types.ts';
import type { NativeCpu } from './native.ts';
import { nativeChunkRows } from './ce-chunk.ts';

export { nativeChunkRows };

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
      if (table instanceof PackedWeight) return packedEmbedding(f32(out, 'out'), ids, table, N, C);
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
      if (lmHead instanceof PackedWeight) packedCrossEntropy(n, losses, dHidden === null ? null : f32(dHidden, 'dHidden'), f32(hidden, 'hidden'), lmHead, rowIds, tgt, C, V, s.chunkRows, gradScale);
      else n.crossEntropy(losses, dHidden === null ? null : f32(dHidden, 'dHidden'), exact(f32(hidden, 'hidden'), rows * C), weight(lmHead, 'lm_head'), rowIds, tgt, C, V, s.chunkRows, gradScale);
      let sumLoss = 0;
      for (const l of losses) sumLoss += l;
      return { sumLoss, count: active.length };
    },
    add: (out, a, b, len) => n.add(exact(f32(out, 'out'), len), exact(f32(a, 'a'), len), exact(f32(b, 'b'), len)),
    dropoutMasks: (seed, p, masks) => n.dropoutMasks(seed, p, masks),
  };
}

/** The embedding lookup on a packed table: just the looked-up rows decoded (the addon's lookup reads f32 / f16 only). */
function packedEmbedding(out: Float32Array, ids: Int32Array, table: PackedWeight, N: number, C: number): void {
  if (table.cols !== C) throw new Error(`embedding: the ${table.format} table has rows of ${table.cols}, expected hidden ${C}`);
  for (let i = 0; i < N; i++) {
    const id = ids[i];
    if (!(id >= 0 && id < table.rows)) throw new Error(`embedding: token id ${id} at position ${i} is outside the vocabulary [0, ${table.rows})`);
    decodePackedRows(out.subarray(i * C, (i + 1) * C), table, id, 1);
  }
}

const f = Math.fround;

/** Kept between steps, as the addon keeps its thread-local scratch (one chunk of logits is ~64 MiB: no churn). */
const ceBuffers = new Map<string, Float32Array>();
function ceScratch(name: string, n: number): Float32Array {
  let b = ceBuffers.get(name);
  if (!b || b.length < n) ceBuffers.set(name, (b = new Float32Array(n)));
  return b.subarray(0, n);
}

/**
 * The addon's cross_entropy (native/src/kernels-impl.h) step for step, for a packed lm_head, which that kernel does not
 * read: the two products go through gemmAbt / gemmNn with the packed format (the same bits as on the dequantized
 * matrix), the exponentials through the addon's vexp, and the sum of a row's exponentials is taken as the kernel takes
 * it (f32 lanes j mod 16, then the fixed tree of simd.h reduce16). So a packed lm_head gives the bits its dequantized
 * copy gives on the native path, without ever holding it whole in floats.
 */
function packedCrossEntropy(n: NativeCpu, losses: Float64Array, dHidden: Float32Array | null, hidden: Float32Array, lmHead: PackedWeight, rows: Int32Array, targets: Int32Array, H: number, V: number, chunkRows: number, gradScale: number): void {
  if (lmHead.rows !== V || lmHead.cols !== H) throw new Error(`cross-entropy: lm_head is a ${lmHead.format} [${lmHead.rows}, ${lmHead.cols}] matrix, expected [vocab ${V}, hidden ${H}]`);
  const count = rows.length;
  if (count === 0) return;
  const format = PACKED_WTYPE[lmHead.format];
  const cr = Math.max(1, Math.min(chunkRows, count));
  const h = ceScratch('h', cr * H);
  const logits = ceScratch('logits', cr * V);
  const dh = dHidden === null ? null : ceScratch('dh', cr * H);
  const gs = f(gradScale);
  const lanes = new Float32Array(16);
  for (let c0 = 0; c0 < count; c0 += cr) {
    const m = Math.min(cr, count - c0);
    for (let i = 0; i < m; i++) h.set(hidden.subarray(rows[c0 + i] * H, (rows[c0 + i] + 1) * H), i * H);
    const lg = logits.subarray(0, m * V);
    n.gemmAbt(lg, h.subarray(0, m * H), lmHead.bytes, null, m, H, V, 1, false, format);
    for (let i = 0; i < m; i++) {
      const l = lg.subarray(i * V, (i + 1) * V);
      let mx = -Infinity;
      for (let j = 0; j < V; j++) if (l[j] > mx) mx = l[j];
      const target = l[targets[c0 + i]];
      for (let j = 0; j < V; j++) l[j] = f(l[j] - mx);
      n.vexp(l, l);
      lanes.fill(0);
      for (let j = 0; j < V; j++) lanes[j & 15] += l[j];
      for (let k = 0; k < 8; k++) lanes[k] += lanes[k + 8];
      for (let k = 0; k < 4; k++) lanes[k] += lanes[k + 4];
      const total = f(f(lanes[0] + lanes[2]) + f(lanes[1] + lanes[3]));
      losses[c0 + i] += mx + Math.log(total) - target;
      if (dh !== null) {
        const k = f(gs / total);
        for (let j = 0; j < V; j++) l[j] *= k;
        l[targets[c0 + i]] -= gs;
      }
    }
    if (dh === null || dHidden === null) continue;
    n.gemmNn(dh.subarray(0, m * H), lg, lmHead.bytes, m, V, H, false, 1, false, format);
    for (let i = 0; i < m; i++) {
      const d = rows[c0 + i] * H;
      for (let c = 0; c < H; c++) dHidden[d + c] += dh[i * H + c];
    }
  }
}
