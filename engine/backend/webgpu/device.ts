/// <reference types="@webgpu/types" />
/**
 * Acquiring the GPU through Dawn (`webgpu` package) and accounting for every byte we put on it.
 *
 * Why an allocator: WebGPU does not tell how much memory an adapter has, so the only honest way to say "needs X GiB,
 * adapter allows Y" is to know exactly what we asked for (every buffer goes through `GpuAllocator`) and to catch the
 * out-of-memory error the device raises when it cannot give more.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, globals } from 'webgpu';
import { allocationBytes, GIB } from './buffer-sizes.ts';

export { GIB };

export function formatGiB(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'unlimited';
  const g = bytes / GIB;
  return `${g >= 0.1 ? g.toFixed(2) : g.toPrecision(2)} GiB`;
}

/** Thrown when a run cannot fit: the message carries what it needed and what the adapter allows. */
export class GpuOutOfMemoryError extends Error {
  constructor(
    readonly neededBytes: number,
    readonly allowedBytes: number,
    detail: string,
  ) {
    super(`not enough GPU memory: needs ${formatGiB(neededBytes)}, adapter allows ${formatGiB(allowedBytes)} (${detail})`);
    this.name = 'GpuOutOfMemoryError';
  }
}

/** Thrown by every GPU operation after the device was lost (driver reset, TDR, destroy()). */
export class GpuDeviceLostError extends Error {
  constructor(readonly reason: string) {
    super(`GPU device lost: ${reason}`);
    this.name = 'GpuDeviceLostError';
  }
}

export interface GpuFeatures {
  f16: boolean;
  subgroups: boolean;
  /** Dawn's experimental subgroup-matrix (tensor cores), requested when present; the matmul uses it for f16 inputs. */
  subgroupMatrix: boolean;
}

export interface AcquireOptions {
  /** Dawn toggles passed to `create()`; defaults to `backend=vulkan` on Linux and Dawn's default elsewhere. */
  dawnFlags?: string[];
  powerPreference?: GPUPowerPreference;
  /** Ask for f16 / subgroups only when the adapter has them (default true for both); false forces them off. */
  useF16?: boolean;
  useSubgroups?: boolean;
  /** Ask for Dawn's experimental subgroup-matrix feature when present (default true); it also needs subgroups and f16. */
  useSubgroupMatrix?: boolean;
  /** Memory the run may use; allocations past it fail with GpuOutOfMemoryError before touching the device. */
  memoryBudgetBytes?: number;
}

interface DawnGpu {
  requestAdapter(options?: GPURequestAdapterOptions): Promise<GPUAdapter | null>;
}

let dawn: DawnGpu | null = null;
let dawnFlagsKey = '';

function dawnInstance(flags: string[]): DawnGpu {
  const key = flags.join(' ');
  if (dawn && key === dawnFlagsKey) return dawn;
  // Dawn's Vulkan loader wants a runtime dir; worker threads and CI containers often have none.
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = join(tmpdir(), `lora-studio-xdg-${process.getuid?.() ?? 0}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
  Object.assign(globalThis, globals);
  dawn = create(flags) as DawnGpu;
  dawnFlagsKey = key;
  return dawn;
}

function defaultFlags(): string[] {
  const flags = process.platform === 'linux' ? ['backend=vulkan'] : [];
  // The tensor-core (subgroup-matrix) matmul is listed by Dawn only with its unsafe APIs on. That kernel has not run
  // on hardware yet, so it is opt-in: LORA_STUDIO_WEBGPU_TENSOR_CORES=1.
  if (process.env.LORA_STUDIO_WEBGPU_TENSOR_CORES === '1') flags.push('enable-dawn-features=allow_unsafe_apis');
  return flags;
}

/** A short, human name for the adapter (shown in the UI next to the backend). */
export function adapterName(info: GPUAdapterInfo): string {
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => typeof s === 'string' && s.length > 0);
  return parts.length > 0 ? [...new Set(parts)].join(' / ') : 'unknown adapter';
}

/**
 * A CPU rasteriser (Mesa llvmpipe/lavapipe, SwiftShader, WARP, a fallback adapter): it runs WebGPU, but slower than
 * the cpu backend, so backend `auto` does not pick it.
 */
export function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  return info.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader|\bwarp\b|software|\bcpu\b/i.test(adapterName(info));
}

/** Whether an adapter exists, its name, and whether it is a software one; never throws (used by backend `auto`). */
export async function probeAdapter(opts: AcquireOptions = {}): Promise<{ available: boolean; name: string | null; error: string | null; software: boolean }> {
  try {
    const adapter = await dawnInstance(opts.dawnFlags ?? defaultFlags()).requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
    if (!adapter) return { available: false, name: null, error: 'no WebGPU adapter', software: false };
    return { available: true, name: adapterName(adapter.info), error: null, software: isSoftwareAdapter(adapter.info) };
  } catch (e) {
    return { available: false, name: null, error: e instanceof Error ? e.message : String(e), software: false };
  }
}

export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

/** One entry of adapter.info.subgroupMatrixConfigs. */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/** Reads the configs Dawn reports, ignoring anything malformed (the attribute is experimental and may change). */
export function readSubgroupMatrixConfigs(info: unknown): SubgroupMatrixConfig[] {
  const raw = (info as { subgroupMatrixConfigs?: unknown } | null)?.subgroupMatrixConfigs;
  if (!raw || typeof raw !== 'object' || !(Symbol.iterator in raw)) return [];
  const out: SubgroupMatrixConfig[] = [];
  for (const c of raw as Iterable<unknown>) {
    if (!c || typeof c !== 'object') continue;
    const r = c as Record<string, unknown>;
    const { componentType, resultComponentType, M, N, K } = r;
    if (typeof componentType === 'string' && typeof resultComponentType === 'string' && typeof M === 'number' && typeof N === 'number' && typeof K === 'number') {
      out.push({ componentType, resultComponentType, M, N, K });
    }
  }
  return out;
}

/** Limits we raise to the adapter's maximum (the WebGPU defaults are far too small for LLM tensors). */
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

export interface GpuLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupsPerDimension: number;
  minStorageBufferOffsetAlignment: number;
  minUniformBufferOffsetAlignment: number;
  maxStorageBuffersPerShaderStage: number;
}

export interface BufferRecord {
  name: string;
  bytes: number;
}

/**
 * Creates and destroys every buffer of a run and keeps the books: live bytes, peak bytes, and what is alive by name.
 * Creation is synchronous; the device reports an allocation failure asynchronously, so callers wrap a batch of
 * allocations in `guard()` which turns a GPUOutOfMemoryError into GpuOutOfMemoryError with the totals.
 */
export class GpuAllocator {
  private live = new Map<GPUBuffer, BufferRecord>();
  liveBytes = 0;
  peakBytes = 0;

  constructor(
    private readonly ctx: GpuContext,
    readonly budgetBytes: number,
  ) {}

  create(name: string, bytes: number, usage: GPUBufferUsageFlags, mappedAtCreation = false): GPUBuffer {
    this.ctx.throwIfLost();
    const size = allocationBytes(bytes);
    if (size > this.ctx.limits.maxBufferSize) {
      throw new GpuOutOfMemoryError(this.liveBytes + size, this.ctx.limits.maxBufferSize, `buffer '${name}' of ${formatGiB(size)} is larger than the adapter's maxBufferSize`);
    }
    if (this.liveBytes + size > this.budgetBytes) {
      throw new GpuOutOfMemoryError(this.liveBytes + size, this.budgetBytes, `budget exceeded while allocating '${name}'`);
    }
    const buffer = this.ctx.device.createBuffer({ label: name, size, usage, mappedAtCreation });
    this.live.set(buffer, { name, bytes: size });
    this.liveBytes += size;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    return buffer;
  }

  destroy(buffer: GPUBuffer): void {
    const rec = this.live.get(buffer);
    if (!rec) return;
    this.live.delete(buffer);
    this.liveBytes -= rec.bytes;
    buffer.destroy();
  }

  destroyAll(): void {
    for (const b of [...this.live.keys()]) this.destroy(b);
  }

  /** Live buffers, biggest first (for error messages and the memory report). */
  records(): BufferRecord[] {
    return [...this.live.values()].sort((a, b) => b.bytes - a.bytes);
  }

  /** The live buffers now; with createdSince(), what an owner (a session) allocated in between. */
  snapshot(): Set<GPUBuffer> {
    return new Set(this.live.keys());
  }

  createdSince(snap: Set<GPUBuffer>): GPUBuffer[] {
    return [...this.live.keys()].filter((b) => !snap.has(b));
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /**
   * Runs `fn` (which allocates) under an out-of-memory error scope. When the device could not back the buffers,
   * everything `fn` allocated is released and a GpuOutOfMemoryError names the total it needed.
   */
  async guard<T>(what: string, neededBytes: number, fn: () => T | Promise<T>): Promise<T> {
    const before = new Set(this.live.keys());
    const liveBefore = this.liveBytes;
    this.ctx.device.pushErrorScope('out-of-memory');
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      await this.ctx.device.popErrorScope();
      for (const b of [...this.live.keys()]) if (!before.has(b)) this.destroy(b);
      throw e;
    }
    const err = await this.ctx.device.popErrorScope();
    this.ctx.throwIfLost();
    if (err) {
      for (const b of [...this.live.keys()]) if (!before.has(b)) this.destroy(b);
      throw new GpuOutOfMemoryError(liveBefore + neededBytes, liveBefore, `${what}: the device ran out of memory (${err.message})`);
    }
    return result;
  }
}

/** One acquired device and what we learnt about it. */
export class GpuContext {
  readonly allocator: GpuAllocator;
  /** adapter.info.subgroupMatrixConfigs when the subgroup-matrix feature was granted, else empty. */
  subgroupMatrixConfigs: SubgroupMatrixConfig[] = [];
  private lostReason: string | null = null;
  private uncaptured: string[] = [];

  constructor(
    readonly device: GPUDevice,
    readonly adapterName: string,
    readonly features: GpuFeatures,
    readonly limits: GpuLimits,
    readonly subgroupMinSize: number,
    readonly subgroupMaxSize: number,
    budgetBytes: number,
    /** A CPU rasteriser (llvmpipe/lavapipe, SwiftShader, WARP): kernels favour compile time over unrolling. */
    readonly software: boolean,
  ) {
    this.allocator = new GpuAllocator(this, budgetBytes);
    void device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message || 'no message from the driver'}`;
    });
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      // Keep the first few: one bad pipeline tends to cascade into hundreds of follow-up errors.
      if (this.uncaptured.length < 8) this.uncaptured.push(ev.error.message);
    };
  }

  get lost(): boolean {
    return this.lostReason !== null;
  }

  throwIfLost(): void {
    if (this.lostReason !== null) throw new GpuDeviceLostError(this.lostReason);
  }

  /** Validation errors nobody caught (a kernel bug); raised at the next sync point so they cannot go unnoticed. */
  throwIfErrors(): void {
    this.throwIfLost();
    if (this.uncaptured.length > 0) {
      const msgs = this.uncaptured.splice(0);
      throw new Error(`WebGPU error(s) on ${this.adapterName}:\n${msgs.join('\n')}`);
    }
  }

  /** Waits for the queue, then reports loss or uncaught errors. */
  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfErrors();
  }

  destroy(): void {
    this.allocator.destroyAll();
    this.device.destroy();
  }
}

function readLimit(limits: GPUSupportedLimits, name: string): number {
  const v: unknown = (limits as unknown as Record<string, unknown>)[name];
  return typeof v === 'number' ? v : 0;
}

/**
 * Acquires an adapter and a device with f16 / subgroups when present and limits raised to the adapter's.
 * Throws with a clear message when no adapter exists.
 */
export async function acquireGpu(opts: AcquireOptions = {}): Promise<GpuContext> {
  const gpu = dawnInstance(opts.dawnFlags ?? defaultFlags());
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new Error(`no WebGPU adapter found (Dawn flags: ${(opts.dawnFlags ?? defaultFlags()).join(' ') || 'none'}); install a Vulkan/Metal/D3D12 driver or use the cpu backend`);
  }
  const want: GPUFeatureName[] = [];
  const f16 = opts.useF16 !== false && adapter.features.has('shader-f16');
  const subgroups = opts.useSubgroups !== false && adapter.features.has('subgroups');
  if (f16) want.push('shader-f16');
  if (subgroups) want.push('subgroups');
  // Dawn lists the feature only with allow_unsafe_apis; it is requested only where present, so adapters without it
  // (llvmpipe, most drivers today) never see the experimental WGSL.
  const subgroupMatrix = opts.useSubgroupMatrix !== false && f16 && subgroups && adapter.features.has(SUBGROUP_MATRIX_FEATURE as GPUFeatureName);
  if (subgroupMatrix) want.push(SUBGROUP_MATRIX_FEATURE as GPUFeatureName);
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) {
    const v = readLimit(adapter.limits, name);
    if (v > 0) requiredLimits[name] = v;
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: want, requiredLimits, label: 'lora-studio' });
  } catch (e) {
    throw new Error(`WebGPU: requestDevice failed on ${adapterName(adapter.info)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const l = device.limits;
  const limits: GpuLimits = {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
    minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
  };
  const info = adapter.info;
  const envBudget = Number(process.env.LORA_STUDIO_GPU_MEMORY_GIB);
  const budget = opts.memoryBudgetBytes ?? (Number.isFinite(envBudget) && envBudget > 0 ? envBudget * GIB : Number.POSITIVE_INFINITY);
  const name = adapterName(info);
  const software = isSoftwareAdapter(info);
  const ctx = new GpuContext(device, name, { f16, subgroups, subgroupMatrix }, limits, info.subgroupMinSize ?? 0, info.subgroupMaxSize ?? 0, budget, software);
  if (subgroupMatrix) ctx.subgroupMatrixConfigs = readSubgroupMatrixConfigs(info);
  return ctx;
}
