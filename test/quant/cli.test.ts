/**
 * The two commands through the real CLI dispatcher, on a model folder with the sample tokenizer and a saved PEFT
 * adapter: quant-report writes the report (both adapter modes, calibration on the built-in sample) and quantize writes
 * a GGUF that holds the merged weights and the tokenizer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../host/cli.ts';
import { writeRandomModel, tinyHfConfig } from '../../engine/io/make-model.ts';
import { saveAdapter } from '../../engine/io/peft-adapter.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { newLora } from '../../engine/model/lora.ts';
import { Rng } from '../../engine/util/rng.ts';
import { QUANT_FORMATS } from '../../engine/quant/format.ts';
import { readGguf, readTensorF32 } from '../../engine/quant/gguf-reader.ts';
import type { QuantReport } from '../../engine/quant/report-types.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';

async function cli(args: string[]): Promise<string> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array): boolean => {
    chunks.push(typeof s === 'string' ? s : Buffer.from(s).toString());
    return true;
  }) as typeof process.stdout.write;
  try {
    await runCli(['node', 'lora-studio', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return chunks.join('');
}

test('quant-report and quantize on a model folder with an adapter', async () => {
  const { modelDir: sampleDir } = await ensureSample();
  const dir = mkdtempSync(join(tmpdir(), 'quant-cli-'));
  try {
    const modelDir = join(dir, 'model');
    const cfg = writeRandomModel(
      modelDir,
      tinyHfConfig('llama', { vocab_size: 8008, hidden_size: 64, intermediate_size: 128, head_dim: 16, bos_token_id: 8000, eos_token_id: 8001 }),
      { seed: 3, tokenizerFrom: sampleDir },
    );
    const lora = newLora(cfg, { r: 4, alpha: 8, dropout: 0, targets: ['v_proj', 'up_proj'], rslora: false }, new Rng(2), Float32Array);
    const rng = new Rng(4);
    for (const layer of lora.layers) for (const p of Object.values(layer)) if (p) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.normal() * 0.1;
    const adapterDir = join(dir, 'adapter');
    saveAdapter(adapterDir, lora, { baseModelNameOrPath: modelDir });

    const out = join(dir, 'report.json');
    const stdout = await cli(['quant-report', '--model', modelDir, '--adapter', adapterDir, '--formats', 'int8,q4_0', '--calib', 'sample', '--calib-tokens', '96', '--calib-seq', '32', '--json', out, '--quiet']);
    const r = JSON.parse(readFileSync(out, 'utf8')) as QuantReport;
    assert.deepEqual(r.formats.map((f) => f.key), ['int8/merged', 'int8/on-quantized', 'q4_0/merged', 'q4_0/on-quantized']);
    assert.deepEqual(r.calibration, { source: 'built-in sample', sequences: 3, seqLen: 32, tokens: 96, bins: 2048 });
    assert.equal(r.adapter?.name, 'adapter');
    assert.equal(r.model.name, 'model');
    for (const f of r.formats) assert.ok(f.output !== null && f.output.positions === 96 && f.layers?.length === 2);
    assert.match(stdout, /q4_0\/on-quantized\s+4\.50/);
    assert.match(stdout, /plan q4_0\/merged → int8\/merged/);

    const gguf = join(dir, 'm.gguf');
    const msg = await cli(['quantize', '--model', modelDir, '--adapter', adapterDir, '--format', 'q8_0', '--out', gguf, '--quiet']);
    assert.match(msg, /m\.gguf: 21 tensors/);
    const f = readGguf(gguf);
    const tokens = f.kv.get('tokenizer.ggml.tokens');
    assert.ok(tokens?.type === 'array' && tokens.values.length === 8008 && tokens.values[8000] === '<|begin_of_text|>');
    assert.deepEqual(f.kv.get('tokenizer.ggml.model'), { type: 'string', value: 'gpt2' });
    assert.deepEqual(f.kv.get('tokenizer.ggml.bos_token_id'), { type: 'uint32', value: 8000 });
    // attn_v holds Q8_0 of the merged weight W + (alpha/r)·B·A, computed here from the files
    const base = loadModel(modelDir, { dtype: Float32Array });
    const v = base.layers[1].v;
    const A = lora.layers[1].v_proj?.A;
    const B = lora.layers[1].v_proj?.B;
    assert.ok(A && B);
    const merged = new Float32Array(v.weight.length);
    for (let o = 0; o < v.outFeatures; o++) {
      for (let i = 0; i < v.inFeatures; i++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += B[o * 4 + k] * A[k * v.inFeatures + i];
        merged[o * v.inFeatures + i] = floatWeight(v.weight)[o * v.inFeatures + i] + 2 * s;
      }
    }
    const got = readTensorF32(f, 'blk.1.attn_v.weight');
    const want = QUANT_FORMATS.q8_0.dequantize(QUANT_FORMATS.q8_0.quantize(merged, v.outFeatures, v.inFeatures), v.outFeatures, v.inFeatures);
    let maxDiff = 0;
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    // merge order of the float sums may differ by an ulp, which can flip a rounding: at most one q step
    assert.ok(maxDiff < 1e-3, `attn_v differs from Q8_0 of the merged weight by ${maxDiff}`);

    await assert.rejects(cli(['quant-report', '--model', modelDir, '--formats', 'int8,q3_k', '--json', out]), /unknown quantization format 'q3_k'/);
    await assert.rejects(cli(['quantize', '--model', modelDir, '--format', 'nf4', '--out', gguf]), /--format must be one of f16, q8_0, q4_0, q4_1, got "nf4"/);
    await assert.rejects(cli(['quant-report', '--model', modelDir, '--calib', join(dir, 'missing.txt'), '--json', out]), /missing\.txt: cannot read the calibration file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
