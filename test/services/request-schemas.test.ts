/**
 * The request contract: every method has its params schema in common/request-schemas.ts, and the services refuse a
 * wrong-typed param through that schema, naming the field (StudioError.fields), whichever service owns the method.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { STUDIO_METHODS, type StudioMethod } from '../../common/protocol.ts';
import { REQUEST_PARAM_SCHEMAS } from '../../common/request-schemas.ts';
import { parseParams } from '../../host/services/params.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const { tmp, services } = tempStudios('lora-request-schemas-');
// Under the temp folder, which the web-host studio allows, so the params check is what refuses.
const M = join(tmp, 'm');

describe('request params schemas', () => {
  test('every method in STUDIO_METHODS has a zod schema, and the list is exactly the schemas', () => {
    assert.ok(STUDIO_METHODS.length >= 50, `only ${STUDIO_METHODS.length} methods`);
    assert.equal(new Set(STUDIO_METHODS).size, STUDIO_METHODS.length, 'a method is listed twice');
    for (const m of STUDIO_METHODS) assert.ok(REQUEST_PARAM_SCHEMAS[m] instanceof z.ZodType, `${m} has no schema`);
    assert.deepEqual([...STUDIO_METHODS].sort(), Object.keys(REQUEST_PARAM_SCHEMAS).sort());
  });

  test('methods without params take {} and absent params', () => {
    for (const m of ['app.info', 'runs.list', 'settings.get', 'quant.list', 'external.list', 'models.discover'] as const) {
      assert.doesNotThrow(() => parseParams(m, {}), m);
      assert.doesNotThrow(() => parseParams(m, undefined), m);
    }
  });

  // A wrong-typed value per method, and the field the refusal must name.
  const wrong: { method: StudioMethod; params: Record<string, unknown>; field: string; message?: RegExp }[] = [
    { method: 'runs.get', params: { id: 5 }, field: 'id', message: /id is required/ },
    { method: 'runs.setPriority', params: { id: 'x', priority: 'high' }, field: 'priority', message: /priority must be a number/ },
    { method: 'runs.events', params: { id: 'x', afterId: 'later' }, field: 'afterId' },
    { method: 'models.inspect', params: { path: 7 }, field: 'path', message: /choose a model folder/ },
    { method: 'models.pullCancel', params: { jobId: false }, field: 'jobId', message: /jobId is required/ },
    { method: 'datasets.upload', params: { fileName: 'a.jsonl', content: 12 }, field: 'content', message: /content must be the text of the file/ },
    { method: 'runs.estimateMemory', params: { modelPath: M, lora: { r: 'eight', alpha: 16, dropout: 0, targets: ['q_proj'] }, train: { learningRate: 1e-3, steps: 1, batchSize: 1, maxSeqLen: 32 } }, field: 'lora.r', message: /rank must be a number/ },
    { method: 'adapters.exportGguf', params: { id: 'a', dtype: 'f8' }, field: 'dtype', message: /dtype must be one of f32, f16/ },
    { method: 'adapters.exportOllama', params: { id: ['a'] }, field: 'id', message: /id is required/ },
    { method: 'runs.exportBundle', params: { id: 'r', processes: 'eight' }, field: 'processes', message: /processes must be a number/ },
    { method: 'external.metrics', params: { id: 'e', afterStep: 'x' }, field: 'afterStep' },
    { method: 'quant.start', params: { modelPath: M, formats: 'q8_0' }, field: 'formats', message: /formats must be a list of format names/ },
    { method: 'quant.start', params: { modelPath: M, formats: ['q9'] }, field: 'formats.0', message: /unknown format; choose from f16/ },
    { method: 'generate.start', params: { modelPath: M, prompt: 'hi', promptFormat: 'raw', maxNewTokens: 'ten', temperature: 0, topP: 1, seed: 1, backend: 'cpu' }, field: 'maxNewTokens', message: /max new tokens must be a number/ },
    { method: 'generate.cancel', params: { jobId: 3 }, field: 'jobId', message: /jobId is required/ },
    { method: 'runs.update', params: { id: 'r', tags: 'a,b' }, field: 'tags', message: /tags must be a list/ },
    { method: 'adapters.delete', params: { id: 'a', dryRun: 'yes' }, field: 'dryRun' },
    { method: 'backends.probe', params: { refresh: 'please' }, field: 'refresh' },
  ];

  test('a wrong-typed param is refused through the services, naming the field', async () => {
    const s = services('wrong-types');
    for (const w of wrong) {
      const e = await refusal(() => s.handle(w.method, w.params));
      const label = `${w.method} ${JSON.stringify(w.params)}`;
      assert.equal(e.info.field, w.field, label);
      assert.ok(e.info.fieldErrors?.some((f) => f.field === w.field), label);
      if (w.message) assert.match(e.info.fieldErrors?.find((f) => f.field === w.field)?.message ?? '', w.message, label);
      // The helper alone says the same: the services add nothing before it.
      assert.throws(() => parseParams(w.method, w.params), (err: unknown) => (err as { info?: { field?: string } }).info?.field === w.field, label);
    }
  });

  test('the params schemas accept what a caller sends, and keep the values', () => {
    assert.deepEqual(parseParams('runs.metrics', { id: 'r', afterStep: 3 }), { id: 'r', afterStep: 3 });
    const q = parseParams('quant.start', { modelPath: M, formats: ['q8_0', 'nf4'] });
    assert.deepEqual(q.formats, ['q8_0', 'nf4']);
    // 'runs.start' leaves the config to the run manager (its field paths start at the config).
    assert.deepEqual(parseParams('runs.start', { config: { anything: 1 } }), { config: { anything: 1 } });
    assert.deepEqual(parseParams('settings.set', { autoResume: false }), { autoResume: false });
  });
});
