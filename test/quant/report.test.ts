/**
 * The report: shapes a UI can draw, sizes, pooled errors recomputed from their definition, flagging of a layer made
 * sensitive on purpose, the mixed-precision plan, calibration metrics against the model's own loss, adapter modes,
 * f16 fallback, cancellation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantReport } from '../../engine/quant/report.ts';
import { QUANT_FORMATS } from '../../engine/quant/format.ts';
import { evalLoss } from '../../engine/model/llama.ts';
import { newLora } from '../../engine/model/lora.ts';
import type { LoraWeights } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';
import { randomModel, tinyConfig } from './data.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';

const MATS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;

function assertPlainJson(v: unknown, path: string): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    assert.ok(Number.isFinite(v), `${path} is ${v}`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => assertPlainJson(x, `${path}[${i}]`));
    return;
  }
  assert.ok(typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype, `${path} is not a plain object`);
  for (const [k, x] of Object.entries(v)) assertPlainJson(x, `${path}.${k}`);
}

function outlierModel(): ReturnType<typeof randomModel> {
  const model = randomModel(tinyConfig({ numLayers: 4 }), 8);
  // Layer 2's down_proj gets one weight of 0.8 (16 σ) in every 32-block: the 4-bit grid of those blocks becomes 16×
  // coarser, so q4_0 rounds the other 31 weights of each block to a step of 0.1 (2 σ).
  const down = model.layers[2].down;
  for (let r = 0; r < down.outFeatures; r++) for (let b = 0; b < down.inFeatures; b += 32) floatWeight(down.weight)[r * down.inFeatures + b] = 0.8;
  return model;
}

test('weights-only report: grid shapes, sizes, pooled error, the sensitive layer flagged and kept in the plan', async () => {
  const model = outlierModel();
  const r = await quantReport(model, ['f16', 'q8_0', 'q4_0']);
  assert.equal(r.version, 1);
  assert.deepEqual(r.matrices, MATS);
  assert.equal(r.weights.length, 4);
  assert.equal(r.formats.length, 3);
  assert.equal(r.calibration, null);
  for (const [l, row] of r.weights.entries()) {
    assert.equal(row.length, 7);
    for (const [m, cell] of row.entries()) {
      const lin = model.layers[l][MATS[m]];
      assert.equal(cell.hist.counts.reduce((a, b) => a + b, 0), lin.outFeatures * lin.inFeatures);
      assert.equal(cell.rows, lin.outFeatures);
    }
  }
  for (const f of r.formats) {
    const fmt = QUANT_FORMATS[f.format as keyof typeof QUANT_FORMATS];
    let bytes = 0;
    let sig = 0;
    let err = 0;
    f.cells.forEach((row, l) =>
      row.forEach((cell, m) => {
        const lin = model.layers[l][MATS[m]];
        assert.equal(cell.sizeBytes, fmt.sizeBytes(lin.outFeatures, lin.inFeatures));
        assert.equal(cell.errorHist.counts.reduce((a, b) => a + b, 0), lin.weight.length);
        bytes += cell.sizeBytes;
        // relErr and mse recomputed from their definitions on this cell's round trip
        const deq = fmt.dequantize(fmt.quantize(lin.weight as Float32Array, lin.outFeatures, lin.inFeatures), lin.outFeatures, lin.inFeatures);
        let s = 0;
        let e = 0;
        for (let i = 0; i < deq.length; i++) {
          s += floatWeight(lin.weight)[i] ** 2;
          e += (floatWeight(lin.weight)[i] - deq[i]) ** 2;
        }
        assert.ok(Math.abs(cell.relErr - Math.sqrt(e / s)) < 1e-12, `${f.key} [${l}, ${MATS[m]}] relErr`);
        assert.ok(Math.abs(cell.mse - e / deq.length) < 1e-15);
        sig += s;
        err += e;
      }),
    );
    assert.equal(f.linearBytes, bytes);
    assert.ok(Math.abs(f.overall.relErr - Math.sqrt(err / sig)) < 1e-12, `${f.key} pooled relErr`);
    assert.equal(f.worst.length, 4 * 7);
    for (let i = 1; i < f.worst.length; i++) assert.ok(f.worst[i - 1].relErr >= f.worst[i].relErr, 'worst first');
  }
  const [f16, q8, q4] = r.formats;
  assert.equal(f16.alerts, 0);
  assert.equal(q8.alerts, 0);
  assert.ok(q8.overall.relErr < q4.overall.relErr && f16.overall.relErr < q8.overall.relErr);
  // q4_0: exactly the doctored cell stands out
  assert.deepEqual(q4.worst.filter((x) => x.status === 'alert').map((x) => [x.layer, x.matrix]), [[2, 'down']]);
  assert.deepEqual([q4.worst[0].layer, q4.worst[0].matrix], [2, 'down']);
  assert.match(q4.cells[2][6].reasons[0], /relative error .* > .* × median/);
  assert.equal(q4.thresholds.weight.source, 'auto');
  // its grid is the 16 levels of a block holding the large weight
  assert.equal(q4.cells[2][6].grid?.length, 16);
  assert.ok(Math.abs(Math.max(...(q4.cells[2][6].grid ?? []).map(Math.abs)) - 0.8) < 1e-3);

  const plan = r.plans.find((p) => p.base === 'q4_0');
  assert.ok(plan);
  assert.equal(plan.high, 'q8_0');
  assert.deepEqual(plan.keepLayers, [2]);
  assert.equal(plan.rankedLayers[0], 2);
  assert.ok(plan.predicted.relErr < plan.baseline.relErr);
  assert.ok(plan.sizeBytes > plan.baseline.sizeBytes && plan.sizeBytes < plan.allHigh.sizeBytes);
  assert.equal(plan.curve.length, 5);
  assert.equal(plan.curve[0].sizeBytes, plan.baseline.sizeBytes);
  assert.equal(plan.curve[4].sizeBytes, plan.allHigh.sizeBytes);
  for (let k = 1; k < plan.curve.length; k++) assert.ok(plan.curve[k].relErr <= plan.curve[k - 1].relErr + 1e-15);
  // model bytes: linears + fp16 embedding/output + fp32 norms
  const c = model.config;
  assert.equal(q4.modelBytes, q4.linearBytes + 2 * 2 * c.vocabSize * c.hiddenSize + 4 * (c.hiddenSize * (2 * c.numLayers + 1)));
  // the whole report is plain JSON: arrays, plain objects, finite numbers, strings, booleans, null
  assertPlainJson(r, 'report');
});

test('user thresholds replace the automatic rule', async () => {
  const r = await quantReport(outlierModel(), ['q4_0'], { thresholds: { weight: { value: 0 } } });
  assert.equal(r.formats[0].alerts, 28);
  assert.equal(r.formats[0].thresholds.weight.source, 'user');
  assert.equal(r.formats[0].thresholds.weight.floor, null);
});

test('calibration: output metrics match the model\'s own loss; better formats move the outputs less', async () => {
  const model = randomModel(tinyConfig({ numLayers: 2 }), 12);
  const B = 3;
  const T = 24;
  const rng = new Rng(3);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(model.config.vocabSize));
  const r = await quantReport(model, ['f16', 'int8', 'q4_0'], { calib: { inputIds: ids, batch: B, seqLen: T, source: 'test' } });
  assert.deepEqual(r.calibration, { source: 'test', sequences: B, seqLen: T, tokens: B * T, bins: 2048 });
  const loss = evalLoss(model, null, { batchSize: B, seqLen: T, inputIds: ids, labels: ids }).loss;
  const [f16, int8, q4] = r.formats;
  for (const f of r.formats) {
    assert.ok(f.output && f.layers);
    assert.equal(f.output.positions, B * T);
    assert.ok(Math.abs(Math.log(f.output.perplexityFloat) - loss) < 1e-5, `${f.key}: float perplexity = exp(loss)`);
    assert.equal(f.layers.length, 2);
    for (const cell of f.cells.flat()) assert.ok(cell.kl !== null && cell.cosine !== null && cell.cosine > 0.9);
    assert.equal(f.sortedBy, 'kl');
    assert.equal(f.thresholds.activation?.metric, 'kl');
  }
  assert.ok(f16.output && int8.output && q4.output);
  assert.ok(f16.output.meanKl < int8.output.meanKl && int8.output.meanKl < q4.output.meanKl, 'mean KL orders the formats');
  assert.ok(Math.abs(f16.output.perplexityDelta) < 1e-3);
  assert.equal(f16.output.top1Agreement, 1);
  const meanCos = (f: typeof f16): number => f.cells.flat().reduce((s, x) => s + (x.cosine ?? 0), 0) / 14;
  assert.ok(meanCos(f16) > meanCos(int8) && meanCos(int8) > meanCos(q4));
  await assert.rejects(quantReport(model, ['int8'], { calib: { inputIds: Int32Array.from([1, 2, 999]), batch: 1, seqLen: 3, source: 'x' } }), /calibration token 999 at position 2 is outside the vocabulary/);
});

test('with an adapter: "merged" and "on-quantized" entries; on-quantized error is the base weight\'s quantization error', async () => {
  const cfg = tinyConfig();
  const model = randomModel(cfg, 2);
  const lora: LoraWeights = newLora(cfg, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'down_proj'], rslora: false }, new Rng(1), Float32Array);
  const rng = new Rng(9);
  for (const layer of lora.layers) for (const p of Object.values(layer)) if (p) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.normal() * 0.2;
  const r = await quantReport(model, ['q4_1'], { lora, adapterName: 'a' });
  assert.deepEqual(r.formats.map((f) => f.key), ['q4_1/merged', 'q4_1/on-quantized']);
  assert.deepEqual(r.adapter, { name: 'a', r: 4, alpha: 8, targets: ['q_proj', 'down_proj'], parameters: 2 * (4 * (64 + 64) + 4 * (128 + 64)) });
  const [merged, onQ] = r.formats;
  // an untouched matrix is quantized identically in both modes
  assert.equal(merged.cells[0][2].relErr, onQ.cells[0][2].relErr);
  // an adapted one: ‖W − Q(W)‖² (base weights), measured against the merged weights
  const fmt = QUANT_FORMATS.q4_1;
  const q = model.layers[1].q;
  const deq = fmt.dequantize(fmt.quantize(q.weight as Float32Array, q.outFeatures, q.inFeatures), q.outFeatures, q.inFeatures);
  let e = 0;
  for (let i = 0; i < deq.length; i++) e += (floatWeight(q.weight)[i] - deq[i]) ** 2;
  assert.ok(Math.abs(onQ.cells[1][0].mse - e / deq.length) < 1e-5 * (e / deq.length)); // fp32 rounding of Q(W) + s·BA
  assert.notEqual(merged.cells[1][0].mse, onQ.cells[1][0].mse);
  assert.equal(onQ.modelBytes - merged.modelBytes, 4 * (r.adapter?.parameters ?? 0));
});

test('rows a GGML format cannot block fall back to f16, and say so', async () => {
  const r = await quantReport(randomModel(tinyConfig({ intermediateSize: 176 }), 1), ['q4_0']);
  const f = r.formats[0];
  assert.equal(f.cells[0][6].fallback, 'f16');
  assert.match(f.cells[0][6].reasons[0], /stored as f16: q4_0: the row length \(176\) must be a multiple of the block size 32/);
  assert.equal(f.cells[0][6].sizeBytes, 64 * 176 * 2);
  assert.equal(f.cells[0][5].fallback, null);
});

test('progress is reported and an aborted signal stops the report', async () => {
  const model = randomModel(tinyConfig(), 1);
  const seen: number[] = [];
  const ac = new AbortController();
  await assert.rejects(
    quantReport(model, ['int8', 'nf4'], {
      signal: ac.signal,
      onProgress: (p) => {
        seen.push(p.done);
        assert.equal(p.total, 2 * 2 * 7);
        if (p.done === 5) ac.abort();
      },
    }),
    (e: Error) => e.name === 'AbortError',
  );
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
});
