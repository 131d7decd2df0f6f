/**
 * Rotary position embedding, half-split convention (transformers' rotate_half): for i < d/2,
 *   out[i]       = x[i]·cos − x[i+d/2]·sin
 *   out[i + d/2] = x[i+d/2]·cos + x[i]·sin,   angle = pos · inv_freq[i].
 * Tables are built in fp32 for fp32 runs (as transformers builds them; at large positions the fp32 angle differs from
 * the exact one by ~pos·2⁻²⁴, which matters at 1e-5) and in f64 otherwise.
 */
import type { FloatArray, RopeScaling } from './types.ts';

export interface RopeParams {
  headDim: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
}

/** cos/sin per position and frequency: [positions, headDim/2]. */
export interface RopeTables {
  cos: Float64Array;
  sin: Float64Array;
  half: number;
  positions: number;
}

const identity = (v: number): number => v;

/** inv_freq[i] = theta^(−2i/d), with llama3 rope_scaling applied when configured. */
export function invFreq(p: RopeParams, fp32: boolean): Float64Array {
  const d = p.headDim;
  if (!Number.isInteger(d) || d <= 0 || d % 2 !== 0) throw new Error(`rope: head_dim must be a positive even integer, got ${d}`);
  if (!(p.ropeTheta > 0)) throw new Error(`rope: rope_theta must be > 0, got ${p.ropeTheta}`);
  const f = fp32 ? Math.fround : identity;
  const half = d / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(Math.pow(p.ropeTheta, f((2 * i) / d))));
  const s = p.ropeScaling;
  if (s === null || s.ropeType === 'default') return inv;
  if (s.ropeType !== 'llama3') throw new Error(`rope: rope_scaling.rope_type ${JSON.stringify(s.ropeType)} is not supported (default, llama3)`);
  if (!(s.factor > 0) || !(s.highFreqFactor > s.lowFreqFactor) || !(s.originalMaxPositionEmbeddings > 0)) {
    throw new Error(`rope: invalid llama3 rope_scaling ${JSON.stringify(s)} (need factor > 0, high_freq_factor > low_freq_factor, original_max_position_embeddings > 0)`);
  }
  const orig = s.originalMaxPositionEmbeddings;
  const lowFreqWavelen = orig / s.lowFreqFactor;
  const highFreqWavelen = orig / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const fr = inv[i];
    // torch evaluates `scalar / tensor` as reciprocal(tensor) · scalar; mirrored in fp32 runs.
    const wavelen = fp32 ? f(f(1 / fr) * f(2 * Math.PI)) : (2 * Math.PI) / fr;
    if (wavelen > lowFreqWavelen) inv[i] = f(fr / s.factor);
    else if (wavelen < highFreqWavelen) inv[i] = fr;
    else {
      const ratio = fp32 ? f(f(1 / wavelen) * orig) : orig / wavelen;
      const smooth = f(f(ratio - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor));
      inv[i] = f(f(f(f(1 - smooth) * fr) / s.factor) + f(smooth * fr));
    }
  }
  return inv;
}

/** Tables for positions [0, positions). */
export function ropeTables(p: RopeParams, positions: number, fp32: boolean): RopeTables {
  const inv = invFreq(p, fp32);
  const half = inv.length;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  const f = fp32 ? Math.fround : identity;
  for (let t = 0; t < positions; t++) {
    for (let i = 0; i < half; i++) {
      const angle = f(t * inv[i]);
      cos[t * half + i] = f(Math.cos(angle));
      sin[t * half + i] = f(Math.sin(angle));
    }
  }
  return { cos, sin, half, positions };
}

function checkPositions(tables: RopeTables, last: number): void {
  if (last > tables.positions) throw new Error(`rope: position ${last - 1} is beyond the table (${tables.positions} positions)`);
}

/**
 * x, out: [B, T, nHeads·headDim]; token t of each sequence sits at position posOffset + t. out may alias x.
 */
export function forward(out: FloatArray, x: FloatArray, tables: RopeTables, B: number, T: number, nHeads: number, headDim: number, posOffset = 0): void {
  const half = headDim / 2;
  if (half !== tables.half) throw new Error(`rope: head_dim ${headDim} does not match the table (${tables.half * 2})`);
  checkPositions(tables, posOffset + T);
  const { cos, sin } = tables;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tab = (posOffset + t) * half;
      const row = (b * T + t) * nHeads * headDim;
      for (let h = 0; h < nHeads; h++) {
        const o = row + h * headDim;
        for (let i = 0; i < half; i++) {
          const c = cos[tab + i];
          const s = sin[tab + i];
          const x1 = x[o + i];
          const x2 = x[o + half + i];
          out[o + i] = x1 * c - x2 * s;
          out[o + half + i] = x2 * c + x1 * s;
        }
      }
    }
  }
}

/** dx += Rᵀ·dOut (the rotation transposed). */
export function backward(dx: FloatArray, dOut: FloatArray, tables: RopeTables, B: number, T: number, nHeads: number, headDim: number, posOffset = 0): void {
  const half = headDim / 2;
  if (half !== tables.half) throw new Error(`rope: head_dim ${headDim} does not match the table (${tables.half * 2})`);
  checkPositions(tables, posOffset + T);
  const { cos, sin } = tables;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tab = (posOffset + t) * half;
      const row = (b * T + t) * nHeads * headDim;
      for (let h = 0; h < nHeads; h++) {
        const o = row + h * headDim;
        for (let i = 0; i < half; i++) {
          const c = cos[tab + i];
          const s = sin[tab + i];
          const d1 = dOut[o + i];
          const d2 = dOut[o + half + i];
          dx[o + i] += d1 * c + d2 * s;
          dx[o + half + i] += d2 * c - d1 * s;
        }
      }
    }
  }
}
