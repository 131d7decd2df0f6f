/**
 * The native cpu kernels (native/: C++ over N-API, built by `npm install`). N-API is ABI-stable, so the one .node
 * file serves Node and Electron alike. When it is missing (an unusual platform, or a failed build), the cpu backend
 * runs the portable TypeScript ops and says so ("cpu (portable, slow)").
 *
 * LORA_STUDIO_CPU_NATIVE=0 turns the native kernels off (tests compare both paths); a path there loads that file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configuredThreads } from './thread-pool.ts';

type F32 = Float32Array;
type Weight = Float32Array | Uint16Array;
/** A Linear's weight: as Weight, or a PackedWeight's bytes when `format` (engine/model/packed-rows.ts PACKED_WTYPE) is given. */
type LinearWeightData = Weight | Uint8Array;

/** The addon's functions (native/src/addon.cpp). Sizes are element counts; every length is checked natively. */
export interface NativeCpu {
  info(): { isa: string; threads: number; isas: string[] };
  setThreads(n: number): void;
  /** false when this CPU cannot run that instruction set. */
  setIsa(isa: string): boolean;
  gemmAbt(out: F32, a: F32, b: LinearWeightData, bias: F32 | null, M: number, K: number, N: number, alpha: number, accumulate: boolean, format?: number | null): void;
  gemmNn(out: F32, a: F32, b: LinearWeightData, M: number, K: number, N: number, transA: boolean, alpha: number, accumulate: boolean, format?: number | null): void;
  linearForward(y: F32, u: F32 | null, xd: F32 | null, x: F32, w: LinearWeightData, bias: F32 | null, A: F32 | null, B: F32 | null, r: number, scaling: number, keep: Uint8Array | null, keepScale: number, M: number, K: number, N: number, format?: number | null): void;
  linearBackward(dx: F32 | null, dA: F32 | null, dB: F32 | null, dY: F32, u: F32 | null, xd: F32 | null, x: F32, w: LinearWeightData, A: F32 | null, B: F32 | null, r: number, scaling: number, keep: Uint8Array | null, keepScale: number, M: number, K: number, N: number, format?: number | null): void;
  attentionForward(out: F32, lse: F32 | null, q: F32, k: F32, v: F32, batch: number, qLen: number, kLen: number, heads: number, kvHeads: number, headDim: number, window: number): void;
  attentionBackward(dq: F32, dk: F32, dv: F32, dOut: F32, out: F32, lse: F32, q: F32, k: F32, v: F32, batch: number, qLen: number, kLen: number, heads: number, kvHeads: number, headDim: number, window: number): void;
  rmsnormForward(out: F32, rstd: F32, x: F32, w: F32, N: number, C: number, eps: number): void;
  rmsnormBackward(dx: F32, dOut: F32, x: F32, w: F32, rstd: F32, N: number, C: number): void;
  swigluForward(out: F32, gate: F32, up: F32, n: number): void;
  swigluBackward(dGate: F32, dUp: F32, dOut: F32, gate: F32, up: F32, n: number, accumulate: boolean): void;
  ropeForward(out: F32, x: F32, cos: Float64Array, sin: Float64Array, half: number, B: number, T: number, heads: number, posOffset: number): void;
  ropeBackward(dx: F32, dOut: F32, cos: Float64Array, sin: Float64Array, half: number, B: number, T: number, heads: number, posOffset: number): void;
  /** -1, or the first position whose id is outside the table. */
  embeddingForward(out: F32, ids: Int32Array, table: Weight, N: number, C: number): number;
  crossEntropy(losses: Float64Array, dHidden: F32 | null, hidden: F32, lmHead: Weight, rows: Int32Array, targets: Int32Array, H: number, V: number, chunkRows: number, gradScale: number): void;
  adamw(p: F32, g: F32, m: F32, v: F32, beta1: number, beta2: number, eps: number, weightDecay: number, decay: number, stepSize: number, bc2Sqrt: number): void;
  dropoutMasks(seed: number, p: number, masks: Uint8Array[]): void;
  add(out: F32, a: F32, b: F32): void;
  vexp(out: F32, x: F32): void;
}

export interface NativeStatus {
  native: NativeCpu | null;
  /** The file loaded, or the one looked for. */
  path: string;
  /** Why it is not used (null when it is). */
  reason: string | null;
}

const ADDON = join('native', 'build', 'Release', 'lora_studio_cpu.node');

/** The package root: the nearest folder above this file whose package.json is lora-studio's (source and dist alike). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'lora-studio') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) return dirname(fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** Where the addon is: electron-builder unpacks .node files next to the asar archive (asarUnpack). */
export function nativeAddonPath(root = packageRoot()): string {
  return join(root.replace(/app\.asar(?=$|[\\/])/, 'app.asar.unpacked'), ADDON);
}

let status: NativeStatus | undefined;

/** Loads the addon once per thread (never throws). */
export function nativeStatus(env: NodeJS.ProcessEnv = process.env): NativeStatus {
  if (status !== undefined) return status;
  const setting = env.LORA_STUDIO_CPU_NATIVE?.trim();
  const path = setting && setting !== '0' && setting !== '1' ? setting : nativeAddonPath();
  if (setting === '0') return (status = { native: null, path, reason: 'turned off (LORA_STUDIO_CPU_NATIVE=0)' });
  if (!existsSync(path)) return (status = { native: null, path, reason: `the native kernels are not built (${path} is missing; run npm run build:native)` });
  try {
    const native = createRequire(import.meta.url)(path) as NativeCpu;
    native.setThreads(configuredThreads(env));
    status = { native, path, reason: null };
  } catch (e) {
    status = { native: null, path, reason: `the native kernels at ${path} did not load: ${e instanceof Error ? e.message : String(e)}` };
  }
  return status;
}

/** The addon, or null (nativeStatus says why). */
export function nativeCpu(): NativeCpu | null {
  return nativeStatus().native;
}
