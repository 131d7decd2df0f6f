/**
 * The kernels that use subgroups, at subgroup sizes other than the machine's own. Hardware differs (Intel 8–32, NVIDIA
 * and Apple 32, AMD 32 or 64) and WGSL promises no size, so the parity suites run again in child processes with
 * llvmpipe's vector width set to 128 and 512 bits: subgroups of 4 and 16 lanes. (Wider settings report 32 or 64
 * lanes but execute 16, which breaks subgroupAdd itself, so they cannot stand in for NVIDIA or AMD.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { repoRoot } from '../helpers/python.ts';

const SUITES = [
  'test/webgpu/matmul-subgroup.test.ts',
  'test/webgpu/cross-entropy.test.ts',
  'test/webgpu/optimizer.test.ts',
  'test/webgpu/rmsnorm.test.ts',
  'test/webgpu/attention.test.ts',
  'test/webgpu/generate-kv.test.ts',
  'test/webgpu/llama-step.test.ts',
];

function childEnv(width: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LP_NATIVE_VECTOR_WIDTH: String(width) };
  // Without this the child's test runner would report to ours as a subtest process.
  delete env.NODE_TEST_CONTEXT;
  return env;
}

function run(args: string[], width: number, timeout: number): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: repoRoot, env: childEnv(width), encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

for (const [width, lanes] of [
  [128, 4],
  [512, 16],
] as const) {
  test(`subgroup kernels agree with the cpu at ${lanes}-lane subgroups (llvmpipe ${width}-bit)`, { timeout: 300_000 }, () => {
    const probe = run(['test/webgpu/subgroup-probe.ts'], width, 60_000);
    assert.equal(probe.status, 0, probe.out);
    const info = JSON.parse(probe.out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1) ?? '{}') as { name: string; software: boolean; subgroups: boolean; min: number; max: number };
    assert.ok(info.subgroups, `${info.name} has no subgroups, so this test proves nothing`);
    // The width setting only exists on llvmpipe; a hardware adapter runs the suites at its own size.
    if (/llvmpipe/i.test(info.name)) assert.deepEqual([info.min, info.max], [lanes, lanes], `${info.name} at ${width} bits`);
    const r = run(['--test', '--test-reporter=tap', ...SUITES], width, 280_000);
    const failed = r.out.split('\n').filter((l) => /^\s*not ok /.test(l));
    assert.equal(r.status, 0, `suites failed at ${info.max}-lane subgroups:\n${failed.join('\n')}\n${r.out.slice(-4000)}`);
    assert.match(r.out, /# fail 0/);
  });
}
