/**
 * Building blocks of our WGSL: a module header (enables, the uniform Params struct, storage bindings), dtype
 * aliases, the workgroup reduction (subgroups when the device has them) and the dropout hash.
 *
 * Binding convention for every kernel: @binding(0) is the uniform `p: Params`; storage bindings follow from 1 in the
 * order the kernel lists them, so a dispatch passes tensors positionally.
 */
import type { GpuDtype } from './tensor.ts';

export type ParamType = 'u32' | 'i32' | 'f32';
export type Access = 'read' | 'read_write';

export interface BindingDecl {
  name: string;
  /** Element type of the storage array. */
  type: GpuDtype | 'atomic<u32>';
  access: Access;
}

export interface KernelSpec {
  /** Cache key and debug label. The WGSL is generated from the key's parts, so equal keys mean equal code. */
  key: string;
  code: string;
  params: [string, ParamType][];
  bindings: BindingDecl[];
}

export interface ModuleOptions {
  key: string;
  f16?: boolean;
  subgroups?: boolean;
  params: [string, ParamType][];
  bindings: BindingDecl[];
  body: string;
}

export function kernelModule(o: ModuleOptions): KernelSpec {
  const f16 = o.f16 === true || o.bindings.some((b) => b.type === 'f16');
  const enables = [f16 ? 'enable f16;' : '', o.subgroups ? 'enable subgroups;' : ''].filter(Boolean).join('\n');
  // `_zero` (always 0) lets loopBound() hide a constant trip count from the compiler; it also keeps the struct
  // non-empty, which WGSL requires.
  const fields: [string, ParamType][] = [...o.params, ['_zero', 'u32']];
  const struct = `struct Params {\n${fields.map(([n, t]) => `  ${n}: ${t},`).join('\n')}\n}`;
  const decls = o.bindings
    .map((b, i) => `@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: array<${b.type}>;`)
    .join('\n');
  const code = `${enables}\n${struct}\n@group(0) @binding(0) var<uniform> p: Params;\n${decls}\n${o.body}\n`;
  return { key: o.key, code, params: fields, bindings: o.bindings };
}

/**
 * The bound of a loop with a constant trip count. On software adapters (llvmpipe, SwiftShader) LLVM fully unrolls
 * such loops and a single matmul kernel then takes 10–20 s to compile; adding the runtime zero keeps the loop rolled
 * there. Hardware drivers get the literal and unroll as they see fit.
 */
export function loopBound(n: number, software: boolean): string {
  return software ? `(${n}u + p._zero)` : `${n}u`;
}

/**
 * Workgroup-wide f32 sum of `v` over `wgSize` threads; every thread gets the total. Declares `red_<name>` in
 * workgroup memory. With subgroups, each subgroup reduces in registers and one partial per thread slot is summed by
 * every subgroup again, which is correct whatever the hardware's subgroup layout (WGSL does not promise one).
 * Must be called from uniform control flow.
 */
export function reduceSumFn(name: string, wgSize: number, subgroups: boolean): string {
  if (subgroups) {
    return `
var<workgroup> red_${name}: array<f32, ${wgSize}>;
fn ${name}(v: f32, lid: u32, sg_id: u32, sg_size: u32) -> f32 {
  let s = subgroupAdd(v);
  red_${name}[lid] = select(0.0, s, sg_id == 0u);
  workgroupBarrier();
  var acc = 0.0;
  for (var i = sg_id; i < ${wgSize}u; i = i + sg_size) { acc = acc + red_${name}[i]; }
  let total = subgroupAdd(acc);
  workgroupBarrier();
  return total;
}`;
  }
  return `
var<workgroup> red_${name}: array<f32, ${wgSize}>;
fn ${name}(v: f32, lid: u32, sg_id: u32, sg_size: u32) -> f32 {
  red_${name}[lid] = v;
  workgroupBarrier();
  for (var s = ${wgSize / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red_${name}[lid] = red_${name}[lid] + red_${name}[lid + s]; }
    workgroupBarrier();
  }
  let total = red_${name}[0];
  workgroupBarrier();
  return total;
}`;
}

/** Same as reduceSumFn for max. */
export function reduceMaxFn(name: string, wgSize: number, subgroups: boolean): string {
  if (subgroups) {
    return `
var<workgroup> red_${name}: array<f32, ${wgSize}>;
fn ${name}(v: f32, lid: u32, sg_id: u32, sg_size: u32) -> f32 {
  let s = subgroupMax(v);
  red_${name}[lid] = s;
  workgroupBarrier();
  var acc = -3.0e38;
  for (var i = sg_id; i < ${wgSize}u; i = i + sg_size) { acc = max(acc, red_${name}[i]); }
  let total = subgroupMax(acc);
  workgroupBarrier();
  return total;
}`;
  }
  return `
var<workgroup> red_${name}: array<f32, ${wgSize}>;
fn ${name}(v: f32, lid: u32, sg_id: u32, sg_size: u32) -> f32 {
  red_${name}[lid] = v;
  workgroupBarrier();
  for (var s = ${wgSize / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red_${name}[lid] = max(red_${name}[lid], red_${name}[lid + s]); }
    workgroupBarrier();
  }
  let total = red_${name}[0];
  workgroupBarrier();
  return total;
}`;
}

/** Entry-point builtins for kernels that reduce: pass `sgArgs(subgroups)` in the parameter list. */
export function sgBuiltins(subgroups: boolean): string {
  return subgroups ? ', @builtin(subgroup_invocation_id) sg_id: u32, @builtin(subgroup_size) sg_size: u32' : '';
}

/** Declares sg_id/sg_size as zeros when the entry point has no subgroup builtins. */
export function sgFallback(subgroups: boolean): string {
  return subgroups ? '' : 'let sg_id = 0u; let sg_size = 1u;';
}

/**
 * Dropout keep-test: a stateless hash of (seed, element index), so backward regenerates the forward mask without
 * storing it. Returns the multiplier: 0 or 1/(1-p).
 */
export const DROPOUT_FN = `
fn pcg_hash(x: u32) -> u32 {
  let state = x * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn dropout_mul(seed: u32, idx: u32, threshold: u32, inv_keep: f32) -> f32 {
  let h = pcg_hash(idx ^ pcg_hash(seed));
  return select(inv_keep, 0.0, h < threshold);
}`;

/** Host side of the dropout test: the same hash, for tests and for the threshold. */
export function pcgHash(x: number): number {
  const state = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> (((state >>> 28) + 4) >>> 0)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

export function dropoutThreshold(p: number): number {
  return Math.min(0xffffffff, Math.floor(p * 4294967296));
}

/** Host reference of dropout_mul. */
export function dropoutMul(seed: number, idx: number, p: number): number {
  if (p <= 0) return 1;
  const h = pcgHash((idx ^ pcgHash(seed >>> 0)) >>> 0);
  return h < dropoutThreshold(p) ? 0 : 1 / (1 - p);
}

/** Flat workgroup index for dispatches laid out by `grid1D` (which may spill into y past 65535 groups). */
export const FLAT_WG = 'wid.x + wid.y * nwg.x';
export const WG_BUILTINS = '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';
