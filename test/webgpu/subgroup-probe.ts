/** Prints the adapter's name and subgroup sizes as JSON (subgroup-sizes.test.ts runs it under other llvmpipe widths). */
import { acquireGpu } from '../../engine/backend/webgpu/device.ts';

const ctx = await acquireGpu();
process.stdout.write(`${JSON.stringify({ name: ctx.adapterName, software: ctx.software, subgroups: ctx.features.subgroups, min: ctx.subgroupMinSize, max: ctx.subgroupMaxSize })}\n`);
ctx.destroy();
