/**
 * "Export for Ollama": a folder with adapter.gguf and a Modelfile. Ollama is not installed here, so the Modelfile is
 * read back by a parser of its documented syntax (docs/modelfile.md: `# comment`, `INSTRUCTION arguments`, "…" and
 * """…""" strings; FROM once, PARAMETER name value) and checked against the base: FROM is the real SmolLM2 GGUF (or
 * its Ollama name when it is a blob of Ollama's store), ADAPTER resolves beside the Modelfile to a GGUF LoRA, and
 * TEMPLATE / stop are the ChatML ones the GGUF's own chat template uses; a base without a template gets none.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { exportForOllama, OLLAMA_TEMPLATES } from '../../engine/export/ollama-modelfile.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { readModelConfig } from '../../engine/io/model-source.ts';
import { saveAdapter } from '../../engine/io/peft-adapter.ts';
import { newLora } from '../../engine/model/lora.ts';
import { readGguf } from '../../engine/quant/gguf-reader.ts';
import { Rng } from '../../engine/util/rng.ts';
import { ollamaManifest, ollamaModelBlob, placeFile } from '../helpers/model-stores.ts';
import { realModelPath } from '../helpers/real-model.ts';
import { tempStudios } from '../helpers/temp-studio.ts';
import { repoRoot } from '../helpers/python.ts';

const root = mkdtempSync(join(tmpdir(), 'ollama-export-'));
after(() => rmSync(root, { recursive: true, force: true }));
const gguf = realModelPath();

interface Instruction {
  name: string;
  args: string;
}

/** Ollama's Modelfile syntax, as documented: one instruction per line (case-insensitive), comments, quoted strings. */
function parseModelfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const known = new Set(['FROM', 'ADAPTER', 'TEMPLATE', 'SYSTEM', 'PARAMETER', 'LICENSE', 'MESSAGE', 'REQUIRES']);
  let rest = text;
  while (rest.length > 0) {
    const nl = rest.indexOf('\n');
    const line = nl < 0 ? rest : rest.slice(0, nl);
    if (line.trim() === '' || line.trimStart().startsWith('#')) {
      rest = nl < 0 ? '' : rest.slice(nl + 1);
      continue;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/s.exec(line);
    assert.ok(m, `not an instruction: ${JSON.stringify(line)}`);
    const name = m[1]!.toUpperCase();
    assert.ok(known.has(name), `unknown instruction ${name}`);
    const start = rest.indexOf(m[2]!.slice(0, 3), line.indexOf(m[1]!) + m[1]!.length);
    let args: string;
    if (rest.startsWith('"""', start)) {
      const end = rest.indexOf('"""', start + 3);
      assert.ok(end > 0, `${name}: """ is not closed`);
      args = rest.slice(start + 3, end);
      const after = rest.indexOf('\n', end);
      assert.equal(rest.slice(end + 3, after < 0 ? undefined : after).trim(), '', `${name}: text after the closing """`);
      rest = after < 0 ? '' : rest.slice(after + 1);
    } else {
      args = m[2]!.trim();
      rest = nl < 0 ? '' : rest.slice(nl + 1);
    }
    out.push({ name, args });
  }
  return out;
}

/** A PARAMETER's value: "…" unquoted. */
function unquote(s: string): string {
  return s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

function checkAdapterFile(modelfile: string, ins: Instruction[]): string {
  const adapters = ins.filter((i) => i.name === 'ADAPTER');
  assert.equal(adapters.length, 1);
  const p = resolve(dirname(modelfile), adapters[0]!.args);
  const f = readGguf(p);
  const type = f.kv.get('general.type');
  assert.equal(type?.type === 'string' ? type.value : null, 'adapter');
  assert.ok(f.byName.has('blk.0.attn_q.weight.lora_a'));
  return p;
}

function realAdapter(dir: string, base: string): void {
  const lora = newLora(readModelConfig(base), { r: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false }, new Rng(1));
  saveAdapter(dir, lora, { baseModelNameOrPath: base });
}

test('on the real SmolLM2 GGUF: FROM that file, ADAPTER beside it, and the ChatML TEMPLATE and stops its chat template uses', () => {
  const adapterDir = join(root, 'adapter-gguf');
  realAdapter(adapterDir, gguf);
  const r = exportForOllama(adapterDir, join(root, 'out-gguf'), { name: 'SmolLM2 Pirate v1' });
  assert.equal(r.name, 'smollm2-pirate-v1');
  assert.equal(r.command, `ollama create smollm2-pirate-v1 -f ${r.modelfile}`);
  const ins = parseModelfile(readFileSync(r.modelfile, 'utf8'));
  const from = ins.filter((i) => i.name === 'FROM');
  assert.equal(from.length, 1);
  assert.ok(isAbsolute(from[0]!.args));
  assert.equal(from[0]!.args, resolve(gguf));
  assert.ok(statSync(from[0]!.args).isFile());
  assert.equal(checkAdapterFile(r.modelfile, ins), r.adapter);
  // The GGUF's own template is ChatML (SmolLM2-Instruct): the Modelfile carries Ollama's ChatML and its turn markers.
  const tpl = readGguf(gguf).kv.get('tokenizer.chat_template');
  assert.ok(tpl?.type === 'string' && tpl.value.includes('<|im_start|>'));
  assert.equal(r.template, 'chatml');
  assert.deepEqual(ins.filter((i) => i.name === 'TEMPLATE').map((i) => i.args), [OLLAMA_TEMPLATES.chatml.template]);
  const stops = ins.filter((i) => i.name === 'PARAMETER').map((i) => i.args.split(/\s+/));
  assert.deepEqual(stops.map((s) => s[0]), ['stop', 'stop']);
  assert.deepEqual(stops.map((s) => unquote(s.slice(1).join(' '))), ['<|im_start|>', '<|im_end|>']);
  // Every stop is a special token of the base's vocabulary, so llama.cpp sees it as one token.
  const tokens = readGguf(gguf).kv.get('tokenizer.ggml.tokens');
  const vocab: unknown[] = tokens?.type === 'array' ? tokens.values : [];
  for (const s of OLLAMA_TEMPLATES.chatml.stop) assert.ok(vocab.includes(s), `${s} is in the vocabulary`);
});

test('a base that is a blob of Ollama\'s store: FROM its Ollama name, which keeps its own template', () => {
  const ollama = join(root, 'ollama');
  const digest = ollamaModelBlob(ollama, gguf);
  ollamaManifest(ollama, 'registry.ollama.ai/library/smollm2/135m-instruct-q4_1', digest, statSync(gguf).size);
  const blob = join(ollama, 'blobs', digest.replace(':', '-'));
  const adapterDir = join(root, 'adapter-ollama');
  realAdapter(adapterDir, blob);
  const r = exportForOllama(adapterDir, join(root, 'out-ollama'), { name: 'pirate' });
  const ins = parseModelfile(readFileSync(r.modelfile, 'utf8'));
  assert.deepEqual(ins.filter((i) => i.name === 'FROM').map((i) => i.args), ['smollm2:135m-instruct-q4_1']);
  assert.equal(r.fromOllama, true);
  assert.deepEqual(ins.filter((i) => i.name === 'TEMPLATE' || i.name === 'PARAMETER'), []);
  checkAdapterFile(r.modelfile, ins);
});

test('an HF folder base without a chat template: FROM the folder, no TEMPLATE, and a missing base is named', () => {
  const hf = join(root, 'hf');
  writeRandomModel(hf, tinyHfConfig('llama', { hidden_size: 64, intermediate_size: 128, head_dim: 16 }), { seed: 2 });
  const adapterDir = join(root, 'adapter-hf');
  realAdapter(adapterDir, hf);
  const r = exportForOllama(adapterDir, join(root, 'out-hf'));
  const ins = parseModelfile(readFileSync(r.modelfile, 'utf8'));
  assert.deepEqual(ins.filter((i) => i.name === 'FROM').map((i) => i.args), [hf]);
  assert.equal(r.template, null);
  assert.deepEqual(ins.filter((i) => i.name === 'TEMPLATE'), []);
  assert.match(readFileSync(r.modelfile, 'utf8'), /# The base's chat template is not one the studio translates/);
  checkAdapterFile(r.modelfile, ins);
  rmSync(hf, { recursive: true });
  assert.throws(() => exportForOllama(adapterDir, join(root, 'out-gone')), /its base model .*hf is not on this machine; Ollama's FROM needs the base/);
});


test('the adapters.exportOllama service writes into the adapter folder and answers the ollama create line', async () => {
  const { services } = tempStudios('ollama-export-services-');
  const studio = services('a');
  // The web studio of the tests may use the temp folder: the base is linked there.
  const base = join(root, 'SmolLM2-135M-Instruct.Q4_1.gguf');
  placeFile(gguf, base);
  const adapterDir = join(root, 'adapter-service');
  realAdapter(adapterDir, base);
  const imported = await studio.handle('adapters.import', { path: adapterDir, name: 'Pirate Talk' });
  const id = imported.adapter.id;
  const r = await studio.handle('adapters.exportOllama', { id });
  const folder = (await studio.handle('adapters.list', {})).find((a) => a.id === id)!.path;
  assert.equal(r.dir, join(folder, 'ollama'));
  // The Ollama name is the adapter's display name made safe ("Pirate Talk …" → "pirate-talk…").
  assert.match(r.name, /^pirate-talk[a-z0-9._-]*$/);
  assert.equal(r.command, `ollama create ${r.name} -f ${join(folder, 'ollama', 'Modelfile')}`);
  const ins = parseModelfile(readFileSync(r.modelfile, 'utf8'));
  assert.deepEqual(ins.filter((i) => i.name === 'FROM').map((i) => i.args), [base]);
  checkAdapterFile(r.modelfile, ins);
  await assert.rejects(studio.handle('adapters.exportOllama', { id: 'no-such-adapter' }), /no-such-adapter/);
});

test('`lora-studio export-ollama <adapter folder>` writes the same folder and prints the command', () => {
  const adapterDir = join(root, 'adapter-cli');
  realAdapter(adapterDir, gguf);
  const out = join(root, 'out-cli');
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), 'export-ollama', adapterDir, '--out', out], { encoding: 'utf8', env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1' }, timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`create the Ollama model with:\\n {2}ollama create adapter-cli -f ${join(out, 'Modelfile').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
  const ins = parseModelfile(readFileSync(join(out, 'Modelfile'), 'utf8'));
  assert.deepEqual(ins.filter((i) => i.name === 'FROM').map((i) => i.args), [resolve(gguf)]);
  checkAdapterFile(join(out, 'Modelfile'), ins);
  const bad = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), 'export-ollama', 'no-such-adapter', '--home', join(root, 'cli-home')], { encoding: 'utf8', env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1' }, timeout: 120_000 });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /no-such-adapter/);
});
