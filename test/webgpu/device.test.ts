/**
 * Device setup: limits raised to the adapter's, optional features requested exactly when present, the allocator's
 * books (live, peak, release), the OOM guard releasing what it allocated, and the adapter probe used by backend auto.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, globals } from 'webgpu';
import { formatGiB, GIB, GpuOutOfMemoryError, probeAdapter } from '../../engine/backend/webgpu/device.ts';
import { createTensor } from '../../engine/backend/webgpu/tensor.ts';
import { gpuForTest } from './gpu.ts';

async function rawAdapter(): Promise<GPUAdapter> {
  Object.assign(globalThis, globals);
  const a = await create(process.platform === 'linux' ? ['backend=vulkan'] : []).requestAdapter({ powerPreference: 'high-performance' });
  assert.ok(a, 'an adapter is required (CI uses Mesa llvmpipe)');
  return a;
}

test('limits are the adapter maxima and f16/subgroups follow the adapter', async () => {
  const adapter = await rawAdapter();
  const { ctx } = await gpuForTest();
  try {
    assert.equal(ctx.limits.maxStorageBufferBindingSize, adapter.limits.maxStorageBufferBindingSize);
    assert.equal(ctx.limits.maxBufferSize, adapter.limits.maxBufferSize);
    assert.equal(ctx.limits.maxComputeWorkgroupStorageSize, adapter.limits.maxComputeWorkgroupStorageSize);
    assert.equal(ctx.features.f16, adapter.features.has('shader-f16'));
    assert.equal(ctx.features.subgroups, adapter.features.has('subgroups'));
    assert.equal(ctx.device.features.has('shader-f16'), ctx.features.f16);
  } finally {
    ctx.destroy();
  }
  const off = await gpuForTest({ useF16: false, useSubgroups: false });
  assert.equal(off.ctx.features.f16, false);
  assert.equal(off.ctx.device.features.has('subgroups'), false);
  off.ctx.destroy();
});

test('the allocator counts live and peak bytes, and guard() releases a failed batch', async () => {
  const { ctx } = await gpuForTest({ memoryBudgetBytes: 1 << 20 });
  try {
    const a = createTensor(ctx, 'a', 1000, 'f32');
    const b = createTensor(ctx, 'b', 3, 'f16');
    assert.equal(ctx.allocator.liveBytes, 4000 + 16);
    ctx.allocator.destroy(b.buffer);
    assert.equal(ctx.allocator.liveBytes, 4000);
    assert.equal(ctx.allocator.peakBytes, 4016);
    await assert.rejects(
      ctx.allocator.guard('test', 2 << 20, () => {
        createTensor(ctx, 'c', 1000, 'f32');
        createTensor(ctx, 'too-big', 1 << 20, 'f32');
      }),
      (e: unknown) => e instanceof GpuOutOfMemoryError && /budget exceeded while allocating 'too-big'/.test(e.message),
    );
    assert.equal(ctx.allocator.liveBytes, 4000, 'what the failed batch allocated was released');
    ctx.allocator.destroy(a.buffer);
    assert.equal(ctx.allocator.liveBytes, 0);
  } finally {
    ctx.destroy();
  }
});

test('probeAdapter reports the adapter by name; formatGiB', async () => {
  const p = await probeAdapter();
  assert.equal(p.available, true);
  assert.ok(p.name && p.name.length > 0);
  assert.equal(formatGiB(14 * GIB), '14.00 GiB');
  assert.equal(formatGiB(Infinity), 'unlimited');
});
