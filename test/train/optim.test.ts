// AdamW, schedules, clipping and loss scaling checked against PyTorch / transformers themselves (tests/python/
// peft_optim_reference.py) and against the closed-form rules of DESIGN.md §4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdamW } from '../../engine/train/adamw.ts';
import { learningRateAt } from '../../engine/train/schedule.ts';
import type { ScheduleKind } from '../../engine/train/schedule.ts';
import { clipGradNorm } from '../../engine/train/clip.ts';
import { GradScaler } from '../../engine/train/grad-scaler.ts';
import { Rng } from '../../engine/util/rng.ts';
import { runPython } from '../helpers/python.ts';

const rng = new Rng(7);
const f32 = (n: number, s = 1): number[] => Array.from({ length: n }, () => Math.fround(rng.normal() * s));
const shapes = [5, 12, 3];

const adamwSpec = {
  params: shapes.map((n) => f32(n)),
  // the third tensor's gradients are tiny, so where eps sits (outside the sqrt) decides its update
  grads: Array.from({ length: 6 }, () => shapes.map((n, i) => f32(n, i === 2 ? 1e-6 : 0.3))),
  lrs: [1e-3, 5e-3, 2e-2, 1e-2, 3e-3, 0],
  betas: [0.9, 0.95],
  eps: 1e-6,
  weight_decay: 0.1,
};
const schedSpecs = (['constant', 'linear', 'cosine'] as ScheduleKind[]).flatMap((kind) => [
  { kind, base_lr: 2e-3, warmup: 0, total: 9 },
  { kind, base_lr: 3e-4, warmup: 4, total: 13 },
  { kind, base_lr: 1e-2, warmup: 13, total: 13 },
]);
const clipSpec = { grads: shapes.map((n) => f32(n, 2)), max_norm: 1.5 };
const clipSpecSmall = { grads: shapes.map((n) => f32(n, 0.01)), max_norm: 1.5 };
// 2 = overflow injected; growth interval 3
const scalerPattern = [0, 0, 0, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0];
const scalerSpec = {
  params: shapes.map((n) => f32(n)),
  lr: 1e-2,
  init_scale: 65536,
  growth_interval: 3,
  grads: scalerPattern.map((kind, i) =>
    shapes.map((n, j) => {
      const g: (number | string)[] = f32(n, 0.5);
      if (kind === 2 && j === 1) g[3] = i % 2 ? 'inf' : 'nan';
      return g;
    }),
  ),
};

interface Reference {
  adamw: number[][][];
  schedules: number[][];
  clip: { norm: number; grads: number[][] }[];
  scaler: { scale_used: number; stepped: boolean; scale_after: number; params: number[][] }[];
}

function reference(spec: unknown): Reference {
  const dir = mkdtempSync(join(tmpdir(), 'optim-ref-'));
  try {
    const path = join(dir, 'spec.json');
    writeFileSync(path, JSON.stringify(spec));
    return JSON.parse(runPython('peft_optim_reference.py', [path])) as Reference;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ref = reference({ adamw: adamwSpec, schedules: schedSpecs, clip: [clipSpec, clipSpecSmall], scaler: scalerSpec });

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = rel * Math.max(1, Math.abs(expected[i]));
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs torch ${expected[i]}`);
  }
}

const num = (x: number | string): number => (typeof x === 'string' ? Number(x.replace('nan', 'NaN').replace('inf', 'Infinity')) : x);

test('AdamW matches torch.optim.AdamW over 6 steps with weight decay and changing lr', () => {
  const params = adamwSpec.params.map((p) => Float32Array.from(p));
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-6, weightDecay: 0.1 });
  adamwSpec.grads.forEach((grads, s) => {
    opt.step(grads.map((g) => Float32Array.from(g)), adamwSpec.lrs[s]);
    params.forEach((p, i) => close(p, ref.adamw[s][i], 2e-6, `step ${s + 1} param ${i}`));
  });
  assert.equal(opt.state.t, 6);
});

test('AdamW state round-trips: a restored optimizer continues exactly', () => {
  const a = adamwSpec.params.map((p) => Float32Array.from(p));
  const optA = new AdamW(a, { weightDecay: 0.01 });
  const b = adamwSpec.params.map((p) => Float32Array.from(p));
  const optB = new AdamW(b, { weightDecay: 0.01 });
  adamwSpec.grads.forEach((grads, s) => {
    optA.step(grads.map((g) => Float32Array.from(g)), 1e-2);
    if (s === 2) {
      const saved = JSON.parse(JSON.stringify({ t: optA.state.t, m: optA.state.m.map((x) => [...x]), v: optA.state.v.map((x) => [...x]) }));
      b.forEach((p, i) => p.set(a[i]));
      optB.loadState({ t: saved.t, m: saved.m.map((x: number[]) => Float32Array.from(x)), v: saved.v.map((x: number[]) => Float32Array.from(x)) });
    }
    if (s > 2) optB.step(grads.map((g) => Float32Array.from(g)), 1e-2);
  });
  a.forEach((p, i) => assert.deepEqual(b[i], p));
});

test('schedules match transformers get_*_schedule_with_warmup', () => {
  schedSpecs.forEach((s, k) => {
    const ours = Array.from({ length: s.total }, (_, step) => learningRateAt({ kind: s.kind, baseLr: s.base_lr, warmupSteps: s.warmup, totalSteps: s.total }, step));
    close(ours, ref.schedules[k], 1e-12, `${s.kind} warmup ${s.warmup}`);
  });
});

test('clip_grad_norm matches torch when clipping and when not', () => {
  for (const [spec, r] of [
    [clipSpec, ref.clip[0]],
    [clipSpecSmall, ref.clip[1]],
  ] as const) {
    const grads = spec.grads.map((g) => Float32Array.from(g));
    const norm = clipGradNorm(grads, spec.max_norm);
    assert.ok(Math.abs(norm - r.norm) <= 1e-6 * r.norm, `norm ${norm} vs torch ${r.norm}`);
    grads.forEach((g, i) => close(g, r.grads[i], 1e-6, `clipped grad ${i}`));
  }
  assert.ok(ref.clip[0].norm > 1.5 && ref.clip[1].norm < 1.5, 'one case clips, the other does not');
});

test('GradScaler: overflow skips the step and halves the scale, growth after the interval — as torch and DESIGN §4', () => {
  const params = scalerSpec.params.map((p) => Float32Array.from(p));
  const opt = new AdamW(params);
  const scaler = new GradScaler({ growthInterval: 3 });
  // DESIGN §4, evaluated directly
  let expectScale = 65536;
  let counter = 0;
  scalerSpec.grads.forEach((gs, s) => {
    const used = scaler.lossScale();
    assert.equal(used, ref.scaler[s].scale_used, `step ${s}: scale used`);
    assert.equal(used, expectScale, `step ${s}: scale by the DESIGN rule`);
    const grads = gs.map((g) => Float32Array.from(g, (x) => num(x) * used));
    const foundInf = scaler.unscale(grads);
    if (!foundInf) opt.step(grads, scalerSpec.lr);
    scaler.update(foundInf);
    assert.equal(!foundInf, ref.scaler[s].stepped, `step ${s}: stepped`);
    assert.equal(scaler.lossScale(), ref.scaler[s].scale_after, `step ${s}: scale after`);
    params.forEach((p, i) => close(p, ref.scaler[s].params[i], 2e-6, `step ${s} param ${i}`));

    if (scalerPattern[s] === 2) {
      expectScale *= 0.5;
      counter = 0;
    } else if (++counter === 3) {
      expectScale *= 2;
      counter = 0;
    }
  });
  assert.ok(ref.scaler.some((r) => !r.stepped) && ref.scaler.some((r) => r.scale_after > r.scale_used), 'the sequence exercises skip and growth');
});

test('GradScaler disabled (fp32): scale 1, never changes, still reports non-finite gradients', () => {
  const s = new GradScaler({ enabled: false });
  assert.equal(s.lossScale(), 1);
  const g = [Float32Array.from([1, 2, 3])];
  assert.equal(s.unscale(g), false);
  assert.deepEqual(g[0], Float32Array.from([1, 2, 3]));
  assert.equal(s.unscale([Float32Array.from([1, Infinity])]), true);
  s.update(true);
  assert.equal(s.lossScale(), 1);
});
