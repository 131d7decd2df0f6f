/**
 * Shared setup for the webgpu parity tests: one device per test file, and the closeness check with the tolerance
 * spelled out. A missing adapter fails the test (there is always one in CI: Mesa llvmpipe), never skips it.
 */
import assert from 'node:assert/strict';
import { acquireGpu, type AcquireOptions, type GpuContext } from '../../engine/backend/webgpu/device.ts';
import { Runner } from '../../engine/backend/webgpu/runner.ts';
import { Rng } from '../../engine/util/rng.ts';

export async function gpuForTest(opts: AcquireOptions = {}): Promise<{ ctx: GpuContext; runner: Runner }> {
  let ctx: GpuContext;
  try {
    ctx = await acquireGpu(opts);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const where = process.env.CI === 'true' ? 'CI=true: the webgpu suite requires an adapter (Mesa llvmpipe/lavapipe)' : 'the webgpu suite requires an adapter';
    throw new Error(`${where}: ${msg}`, { cause: e });
  }
  return { ctx, runner: new Runner(ctx) };
}

export function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

export function rms(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s / Math.max(1, x.length));
}

/**
 * Elementwise |actual − expected| ≤ rtol·(|expected| + rms(expected)): relative for large entries, and relative to
 * the tensor's typical magnitude for entries near zero (where a pure relative test measures only cancellation).
 */
export function assertClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number): void {
  assert.equal(actual.length, expected.length, `${name}: length ${actual.length} vs ${expected.length}`);
  const scale = rms(expected);
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!Number.isFinite(a)) assert.fail(`${name}[${i}] is ${a} (expected ${e})`);
    const ratio = Math.abs(a - e) / (Math.abs(e) + scale || 1);
    if (ratio > worst) {
      worst = ratio;
      worstAt = i;
    }
  }
  assert.ok(worst <= rtol, `${name}: worst relative error ${worst.toExponential(2)} > ${rtol} at [${worstAt}]: got ${actual[worstAt]}, expected ${expected[worstAt]} (rms ${scale.toExponential(2)})`);
}
