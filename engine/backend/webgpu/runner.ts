/**
 * Pipeline cache and recorded programs.
 *
 * A training step has the same shapes every time, so its dispatches are recorded once into a `Program` (pipeline,
 * bind group, uniform params, grid) and replayed each step: no WGSL compiles, bind groups or uniform writes on the hot
 * path. Values that change per step (learning rate, loss scale, step count) live in a small storage buffer the caller
 * writes before submitting.
 */
import type { GpuContext } from './device.ts';
import { bindingBytes, type GpuTensor } from './tensor.ts';
import type { KernelSpec } from './wgsl.ts';

export class Runner {
  private pipelines = new Map<string, GPUComputePipeline>();

  constructor(readonly ctx: GpuContext) {}

  pipeline(spec: KernelSpec): GPUComputePipeline {
    let p = this.pipelines.get(spec.key);
    if (!p) {
      const module = this.ctx.device.createShaderModule({ label: spec.key, code: spec.code });
      p = this.ctx.device.createComputePipeline({ label: spec.key, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(spec.key, p);
    }
    return p;
  }

  /** Compiles every pipeline and reports WGSL errors with the kernel's key (Dawn's async errors name no kernel). */
  async compileChecked(spec: KernelSpec): Promise<void> {
    if (this.pipelines.has(spec.key)) return;
    const device = this.ctx.device;
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ label: spec.key, code: spec.code });
    const info = await module.getCompilationInfo();
    const errs = info.messages.filter((m) => m.type === 'error');
    const p = device.createComputePipeline({ label: spec.key, layout: 'auto', compute: { module, entryPoint: 'main' } });
    const err = await device.popErrorScope();
    if (errs.length > 0 || err) {
      const lines = spec.code.split('\n');
      const detail = errs.map((m) => `  line ${m.lineNum}: ${m.message}\n    ${lines[m.lineNum - 1] ?? ''}`).join('\n');
      throw new Error(`WGSL kernel '${spec.key}' failed to compile:\n${detail || err?.message}`);
    }
    this.pipelines.set(spec.key, p);
  }

  /** Records, builds and runs a one-off program (tests, uploads). */
  async runOnce(record: (p: Program) => void, label = 'once'): Promise<void> {
    const prog = new Program(this, label);
    record(prog);
    await prog.compile();
    await prog.build();
    this.submit([prog]);
    await this.ctx.sync();
    prog.destroy();
  }

  submit(programs: Program[]): void {
    this.ctx.throwIfLost();
    const enc = this.ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (const p of programs) p.encode(pass);
    pass.end();
    this.ctx.device.queue.submit([enc.finish()]);
  }
}

/** A uniform parameter that changes between replays (dropout seeds): re-read by Program.refreshParams(). */
export type ParamValue = number | (() => number);

interface Dispatch {
  spec: KernelSpec;
  tensors: GpuTensor[];
  params: ParamValue[];
  grid: [number, number, number];
}

export class Program {
  private dispatches: Dispatch[] = [];
  private built: { pipeline: GPUComputePipeline; group: GPUBindGroup; grid: [number, number, number] }[] | null = null;
  private uniform: GPUBuffer | null = null;
  private paramData: ArrayBuffer | null = null;
  private hasThunks = false;

  constructor(
    readonly runner: Runner,
    readonly label: string,
  ) {}

  get size(): number {
    return this.dispatches.length;
  }

  /** Adds a dispatch. `params` follow the order of spec.params; `tensors` the order of spec.bindings. */
  dispatch(spec: KernelSpec, tensors: GpuTensor[], params: Record<string, ParamValue>, grid: [number, number, number]): void {
    if (this.built) throw new Error(`program '${this.label}' is already built`);
    if (tensors.length !== spec.bindings.length) {
      throw new Error(`kernel '${spec.key}': expected ${spec.bindings.length} tensors (${spec.bindings.map((b) => b.name).join(', ')}), got ${tensors.length}`);
    }
    const align = this.runner.ctx.limits.minStorageBufferOffsetAlignment;
    const access = new Map<GPUBuffer, string>();
    tensors.forEach((t, i) => {
      const b = spec.bindings[i];
      const want = b.type === 'atomic<u32>' ? 'u32' : b.type;
      if (t.dtype !== want && !(want === 'u32' && t.dtype === 'i32')) {
        throw new Error(`kernel '${spec.key}': binding '${b.name}' wants ${want}, got tensor '${t.name}' of ${t.dtype}`);
      }
      if (t.offset % align !== 0) throw new Error(`kernel '${spec.key}': tensor '${t.name}' offset ${t.offset} is not ${align}-byte aligned`);
      const prev = access.get(t.buffer);
      // WebGPU forbids one buffer as read-only and writable storage in the same dispatch.
      if (prev !== undefined && prev !== b.access) {
        throw new Error(`kernel '${spec.key}': tensor '${t.name}' shares a buffer bound both read-only and writable in one dispatch`);
      }
      access.set(t.buffer, b.access);
    });
    const maxGroups = this.runner.ctx.limits.maxComputeWorkgroupsPerDimension;
    if (grid.some((g) => g > maxGroups)) throw new Error(`kernel '${spec.key}': grid ${grid.join('×')} exceeds ${maxGroups} workgroups per dimension`);
    const values = spec.params.map(([name]) => {
      if (name.startsWith('_')) return 0;
      const v = params[name];
      if (typeof v === 'function') {
        this.hasThunks = true;
        return v;
      }
      if (v === undefined || !Number.isFinite(v)) throw new Error(`kernel '${spec.key}': param '${name}' is ${String(v)}`);
      return v;
    });
    if (grid.some((g) => g === 0)) return;
    this.dispatches.push({ spec, tensors, params: values, grid });
  }

  async compile(): Promise<void> {
    const seen = new Set<string>();
    for (const d of this.dispatches) {
      if (seen.has(d.spec.key)) continue;
      seen.add(d.spec.key);
      await this.runner.compileChecked(d.spec);
    }
  }

  private slotBytes(): number {
    return Math.max(256, this.runner.ctx.limits.minUniformBufferOffsetAlignment);
  }

  private writeParams(data: ArrayBuffer): void {
    const slot = this.slotBytes();
    const dv = new DataView(data);
    this.dispatches.forEach((d, i) => {
      d.spec.params.forEach(([name, type], k) => {
        const off = i * slot + k * 4;
        const raw = d.params[k];
        const v = typeof raw === 'function' ? raw() : raw;
        if (!Number.isFinite(v)) throw new Error(`kernel '${d.spec.key}': param '${name}' evaluated to ${v}`);
        if (type === 'f32') dv.setFloat32(off, v, true);
        else if (type === 'i32') dv.setInt32(off, v, true);
        else dv.setUint32(off, v >>> 0, true);
      });
    });
  }

  /** Creates the uniform buffer and bind groups; a binding that does not fit its kernel is reported by key. */
  async build(): Promise<void> {
    const ctx = this.runner.ctx;
    ctx.device.pushErrorScope('validation');
    const slot = this.slotBytes();
    const n = this.dispatches.length;
    const data = new ArrayBuffer(Math.max(1, n) * slot);
    this.writeParams(data);
    this.paramData = data;
    this.uniform = ctx.allocator.create(`${this.label}:params`, data.byteLength, 0x0040 | 0x0008); // UNIFORM | COPY_DST
    ctx.device.queue.writeBuffer(this.uniform, 0, data);
    const uniform = this.uniform;
    this.built = this.dispatches.map((d, i) => {
      const pipeline = this.runner.pipeline(d.spec);
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniform, offset: i * slot, size: Math.max(16, d.spec.params.length * 4) } }];
      d.tensors.forEach((t, k) => entries.push({ binding: k + 1, resource: { buffer: t.buffer, offset: t.offset, size: bindingBytes(t) } }));
      const group = ctx.device.createBindGroup({ label: d.spec.key, layout: pipeline.getBindGroupLayout(0), entries });
      return { pipeline, group, grid: d.grid };
    });
    const err = await ctx.device.popErrorScope();
    if (err) throw new Error(`program '${this.label}': ${err.message}`);
  }

  /** Re-evaluates parameter thunks and uploads the parameters (queue-ordered before the next submit). */
  refreshParams(): void {
    if (!this.hasThunks || !this.uniform || !this.paramData) return;
    this.writeParams(this.paramData);
    this.runner.ctx.device.queue.writeBuffer(this.uniform, 0, this.paramData);
  }

  encode(pass: GPUComputePassEncoder): void {
    if (!this.built) throw new Error(`program '${this.label}' was not built`);
    for (const b of this.built) {
      pass.setPipeline(b.pipeline);
      pass.setBindGroup(0, b.group);
      pass.dispatchWorkgroups(b.grid[0], b.grid[1], b.grid[2]);
    }
  }

  destroy(): void {
    if (this.uniform) this.runner.ctx.allocator.destroy(this.uniform);
    this.uniform = null;
    this.built = null;
  }
}

/** A grid of `groups` workgroups, spilling into y past the per-dimension limit (kernels use FLAT_WG). */
export function grid1D(groups: number, maxPerDim = 65535): [number, number, number] {
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}
