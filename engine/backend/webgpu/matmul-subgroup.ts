/**
 * The tiled matmul with subgroups: same 64×64 output tile and 4×4 outputs per thread as the plain kernel, but the A
 * slice never goes through workgroup memory. Each thread loads a few A values straight from global memory into
 * registers and the threads that need them (those computing the same output rows) read them with subgroupShuffle;
 * only B is staged in workgroup memory. That halves workgroup-memory traffic and the barrier-protected footprint.
 *
 * WGSL promises nothing about how local_invocation_index maps onto subgroup lanes, so the kernel does not use it for
 * the output layout: each subgroup takes a dense index from a workgroup atomic, and thread t = index·size + lane.
 * Threads t with the same t/16 compute the same rows; within one subgroup they form sharing groups of g = min(size,
 * 16) lanes, and lane q of a group holds A at depths q, q+g, …  This is correct for any power-of-two subgroup size
 * from 4 to 256, provided subgroups are full — which holds when the workgroup (256) is a multiple of the size.
 */
import type { GpuContext } from './device.ts';
import { checkF16, loadA, loadB, MATMUL_PARAMS, matmulBindings, matmulPrelude, storeC, variantKey, type MatmulVariant } from './matmul-wgsl.ts';
import { DROPOUT_FN, kernelModule, loopBound, type KernelSpec } from './wgsl.ts';

const BM = 64;
const BN = 64;
const BK = 16;

function isPow2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Whether the subgroup kernel is correct on this device: subgroups on, every possible size a power of two in 4..256. */
export function subgroupMatmulUsable(ctx: GpuContext): boolean {
  const lo = ctx.subgroupMinSize;
  const hi = ctx.subgroupMaxSize;
  return ctx.features.subgroups && lo >= 4 && hi <= 256 && isPow2(lo) && isPow2(hi);
}

export function matmulSubgroupKernel(v: MatmulVariant, ctx: GpuContext): KernelSpec {
  if (!subgroupMatmulUsable(ctx)) throw new Error(`matmul: the subgroup kernel needs subgroups of 4..256 lanes; ${ctx.adapterName} reports ${ctx.subgroupMinSize}..${ctx.subgroupMaxSize}`);
  const f16 = checkF16(v, ctx);
  const bLoad = v.layoutB === 'nk' ? `let nn = e / ${BK}u; let kk = e % ${BK}u;` : `let kk = e / ${BN}u; let nn = e % ${BN}u;`;
  const L4 = loopBound(4, ctx.software);
  const body = `
${DROPOUT_FN}
${matmulPrelude(v)}
var<workgroup> Bs: array<f32, ${BK * BN}>;
var<workgroup> sg_count: atomic<u32>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sg_id: u32, @builtin(subgroup_size) sg_size: u32) {
  var slot = 0u;
  if (subgroupElect()) { slot = atomicAdd(&sg_count, 1u); }
  let t = subgroupMax(slot) * sg_size + sg_id;
  let tx = t % 16u;
  let ty = t / 16u;
  let g = min(sg_size, 16u);
  let q = sg_id % g;
  let gbase = sg_id - q;
  let m0 = wid.y * ${BM}u;
  let n0 = wid.x * ${BN}u;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
  var areg: array<f32, 16>;
  for (var k0 = 0u; k0 < p.K; k0 = k0 + ${BK}u) {
    // areg[c*4+i] = A(m0 + ty + 16i, k0 + q + c·g) for the depths this lane owns (c < 16/g).
    for (var c = 0u; c < ${L4}; c++) {
      for (var i = 0u; i < ${L4}; i++) {
        let kk = q + c * g;
        let m = m0 + ty + i * 16u; let k = k0 + kk;
        var got = 0.0;
        if (kk < ${BK}u) {
          ${loadA(v)}
          got = val;
        }
        areg[c * 4u + i] = got;
      }
    }
    for (var r = 0u; r < ${L4}; r++) {
      let e = lid + r * 256u;
      ${bLoad}
      let n = n0 + nn; let k = k0 + kk;
      ${loadB(v)}
      Bs[kk * ${BN}u + nn] = val;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${loopBound(BK, ctx.software)}; kk++) {
      let src = gbase + kk % g;
      let c = kk / g;
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { av[i] = subgroupShuffle(areg[c * 4u + i], src); }
      for (var j = 0u; j < 4u; j++) { bv[j] = Bs[kk * ${BN}u + tx + j * 16u]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${L4}; i++) {
    let m = m0 + ty + i * 16u;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < ${L4}; j++) {
      let n = n0 + tx + j * 16u;
      if (n >= p.N) { continue; }
      ${storeC(v, 'acc[i * 4u + j]')}
    }
  }
}`;
  return kernelModule({ key: `matmul.sg:${variantKey(v)}`, f16, subgroups: true, params: MATMUL_PARAMS, bindings: matmulBindings(v), body });
}
