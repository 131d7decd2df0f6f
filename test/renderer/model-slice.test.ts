/**
 * The model slice (renderer/src/stores/model-slice.ts) as both stores hold it: the studio store (Train page) and the
 * quantization lab, talking to real studio services in this process through the same reply envelope the web host
 * sends. What the services answer is the oracle; the only stand-in is the OS folder picker.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { StudioErrorInfo } from '../../common/protocol.ts';
import { toStudioErrorInfo } from '../../host/services/errors.ts';
import { createStudioServices, type StudioServices } from '../../host/services/studio-services.ts';
import { SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { unwrapReply, type StudioClient } from '../../renderer/src/client/transport.ts';
import { useLab } from '../../renderer/src/lab/lab-store.ts';
import { useStudio } from '../../renderer/src/stores/studio.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lora-model-slice-'));
/** What the folder picker hands back next (null = the user cancelled), and the titles it was opened with. */
let picked: string | null = null;
const pickerTitles: string[] = [];
const services = createStudioServices({
  home: join(tmp, 'home'),
  host: 'electron',
  dialogs: {
    pickFolder: async ({ title }) => {
      pickerTitles.push(title ?? '');
      return picked;
    },
    pickFile: async () => null,
  },
});
after(async () => {
  await services.close();
  rmSync(tmp, { recursive: true, force: true });
});

function clientOf(s: StudioServices): StudioClient {
  return {
    host: 'electron',
    async request(method, params) {
      let reply: unknown;
      try {
        reply = { ok: true, result: await s.handle(method, params) };
      } catch (e) {
        reply = { ok: false, error: toStudioErrorInfo(e) };
      }
      return unwrapReply(method, reply);
    },
    onEvent: (listener) => s.onEvent(listener),
    onConnection: () => () => {},
  };
}

async function refusalOf(call: () => Promise<unknown>): Promise<StudioErrorInfo> {
  try {
    await call();
  } catch (e) {
    return toStudioErrorInfo(e);
  }
  assert.fail('expected the services to refuse');
}

useStudio.getState().connect(clientOf(services));
const notAModel = mkdtempSync(join(tmp, 'empty-'));

test('studio store: typing a path drops the old summary and the services complaint about the path, in one update', async () => {
  await useStudio.getState().chooseSampleModel();
  assert.ok(useStudio.getState().model);
  useStudio.setState({ serverErrors: { modelPath: 'not a model folder', 'lora.r': 'must be at least 1' } });
  let updates = 0;
  const off = useStudio.subscribe(() => updates++);
  useStudio.getState().setModelPath('/somewhere/else');
  off();
  const s = useStudio.getState();
  assert.equal(updates, 1);
  assert.equal(s.modelPath, '/somewhere/else');
  assert.equal(s.model, null);
  assert.equal(s.modelError, null);
  assert.deepEqual(s.serverErrors, { 'lora.r': 'must be at least 1' });
});

test('studio store: inspecting a blank path asks nothing and names the field; a folder that is no model carries the services refusal', async () => {
  useStudio.getState().setModelPath('   ');
  await useStudio.getState().inspectModel();
  assert.equal(useStudio.getState().modelError?.field, 'modelPath');
  assert.equal(useStudio.getState().modelBusy, false);

  useStudio.getState().setModelPath(notAModel);
  await useStudio.getState().inspectModel();
  const s = useStudio.getState();
  assert.deepEqual(s.modelError, await refusalOf(() => services.handle('models.inspect', { path: notAModel })));
  assert.equal(s.model, null);
  assert.equal(s.modelBusy, false);
});

test('studio store: a loaded model replaces the typed path, is busy while loading, and answers the complaint about the path', async () => {
  useStudio.setState({ serverErrors: { modelPath: 'not a model folder', 'train.steps': 'required' } });
  const busy: boolean[] = [];
  const off = useStudio.subscribe((s) => busy.push(s.modelBusy));
  await useStudio.getState().chooseSampleModel();
  off();
  const s = useStudio.getState();
  assert.deepEqual(s.model, await services.handle('models.sample', {}));
  assert.equal(s.modelPath, s.model?.path);
  assert.equal(s.modelError, null);
  assert.deepEqual(busy, [true, false]);
  assert.deepEqual(s.serverErrors, { 'train.steps': 'required' });
});

test('both stores: the folder picker inspects what was picked, a cancel changes nothing, each store titles its picker', async () => {
  pickerTitles.length = 0;
  picked = SAMPLE_MODEL_DIR;
  await useStudio.getState().browseModel();
  await useLab.getState().browseModel();
  const expected = await services.handle('models.inspect', { path: SAMPLE_MODEL_DIR });
  assert.deepEqual(useStudio.getState().model, expected);
  assert.deepEqual(useLab.getState().model, expected);
  assert.equal(pickerTitles.length, 2);
  assert.ok(pickerTitles.every((t) => t.includes('model folder')), pickerTitles.join(' | '));

  picked = null;
  const before = useLab.getState();
  await useLab.getState().browseModel();
  assert.equal(useLab.getState(), before);
});

test('lab store: its own model, apart from the Train page; a refusal there leaves the studio store alone', async () => {
  useStudio.setState({ serverErrors: { modelPath: 'kept' } });
  useLab.getState().setModelPath(notAModel);
  assert.equal(useLab.getState().model, null);
  await useLab.getState().inspectModel();
  assert.deepEqual(useLab.getState().modelError, await refusalOf(() => services.handle('models.inspect', { path: notAModel })));
  await useLab.getState().chooseSampleModel();
  assert.deepEqual(useLab.getState().model, await services.handle('models.sample', {}));
  assert.equal(useLab.getState().modelPath, useLab.getState().model?.path);
  assert.deepEqual(useStudio.getState().serverErrors, { modelPath: 'kept' });
  assert.notEqual(useStudio.getState().modelPath, notAModel);
});
