/**
 * electron/main.ts under a stand-in `electron` module: every protocol request has its IPC handler, the preload
 * (compiled the way tsc emits it and run the way a sandboxed preload runs) talks to those handlers, events reach
 * the window, and dragging an adapter hands Electron a real PEFT folder.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import ts from 'typescript';
import type { StudioBridge } from '../../common/bridge.ts';
import { STUDIO_METHODS, type StudioEventMessage, type StudioReply, type StudioMethod } from '../../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { AdapterStore } from '../../host/services/adapter-store.ts';
import { openHome } from '../../host/services/home.ts';
import { startMain, type ElectronShell, type IpcEventLike, type SenderLike, type StudioMain } from '../../electron/main.ts';
import { assertPeftAdapter, readFolder, writeTestAdapter } from '../helpers/peft-folder.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
// Electron's own option types, reached through main.ts's shell (only main.ts and the preload import electron).
type BrowserWindowConstructorOptions = ConstructorParameters<ElectronShell['BrowserWindow']>[0];
type Item = Parameters<SenderLike['startDrag']>[0];

/** A window's webContents that records what main does to it and can feed events to a fake renderer. */
class StandInWebContents {
  readonly sent: { channel: string; args: unknown[] }[] = [];
  readonly drags: Item[] = [];
  readonly rendererListeners = new Map<string, ((event: unknown, ...args: unknown[]) => void)[]>();
  openHandler: ((details: { url: string }) => { action: string }) | null = null;
  navigateListener: ((event: { preventDefault(): void }, url: string) => void) | null = null;
  send(channel: string, ...args: unknown[]): void {
    this.sent.push({ channel, args });
    for (const l of this.rendererListeners.get(channel) ?? []) l({}, ...args);
  }
  startDrag(item: Item): void {
    this.drags.push(item);
  }
  isDestroyed(): boolean {
    return false;
  }
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' } | { action: 'allow' }): void {
    this.openHandler = handler;
  }
  on(_event: 'will-navigate', listener: (event: { preventDefault(): void }, url: string) => void): this {
    this.navigateListener = listener;
    return this;
  }
}

class StandInWindow {
  static all: StandInWindow[] = [];
  static getAllWindows(): StandInWindow[] {
    return [...StandInWindow.all];
  }
  readonly webContents = new StandInWebContents();
  loaded: string | null = null;
  focused = 0;
  constructor(readonly options: BrowserWindowConstructorOptions) {
    StandInWindow.all.push(this);
  }
  async loadFile(path: string): Promise<void> {
    this.loaded = path;
  }
  async loadURL(url: string): Promise<void> {
    this.loaded = url;
  }
  isDestroyed(): boolean {
    return !StandInWindow.all.includes(this);
  }
  isMinimized(): boolean {
    return false;
  }
  restore(): void {}
  focus(): void {
    this.focused++;
  }
  close(): void {
    StandInWindow.all = StandInWindow.all.filter((w) => w !== this);
  }
}

const handlers = new Map<string, (event: IpcEventLike, ...args: unknown[]) => unknown>();
const listeners = new Map<string, (event: IpcEventLike, ...args: unknown[]) => void>();
const appListeners = new Map<string, (event: { preventDefault(): void }) => void>();
const noEvent = { preventDefault: (): void => undefined };
const dialogCalls: unknown[] = [];
const errorBoxes: { title: string; content: string }[] = [];
let quits = 0;

const electron: ElectronShell = {
  app: {
    whenReady: async () => undefined,
    on(event, listener) {
      appListeners.set(event, listener);
    },
    quit() {
      quits++;
    },
    getAppPath: () => repoRoot,
    requestSingleInstanceLock: () => true,
  },
  BrowserWindow: StandInWindow,
  ipcMain: {
    handle(channel, listener) {
      // Electron refuses a second handler on one channel; so does the stand-in.
      if (handlers.has(channel)) throw new Error(`Attempted to register a second handler for '${channel}'`);
      handlers.set(channel, listener);
    },
    on(channel, listener) {
      listeners.set(channel, listener);
    },
  },
  dialog: {
    async showOpenDialog(options) {
      dialogCalls.push(options);
      return { canceled: false, filePaths: ['/picked/by/user'] };
    },
    showErrorBox(title, content) {
      errorBoxes.push({ title, content });
    },
  },
};

const tmp = mkdtempSync(join(tmpdir(), 'lora-main-'));
const home = join(tmp, 'home');
let main: StudioMain;
let win: StandInWindow;

async function invoke<M extends StudioMethod>(method: M, params: unknown, sender: StandInWebContents = win.webContents): Promise<StudioReply<M>> {
  const h = handlers.get(`studio:${method}`);
  assert.ok(h, `no handler for studio:${method}`);
  return (await h({ sender }, params)) as StudioReply<M>;
}

function registerAdapter(id: string): string {
  const source = join(tmp, `${id}-source`);
  writeTestAdapter(source, SAMPLE_MODEL_DIR, 8, ['q_proj', 'k_proj', 'v_proj', 'o_proj']);
  new AdapterStore(openHome(home)).register({ id, name: `adapter ${id}`, runId: null, sourceDir: source });
  return id;
}

before(async () => {
  process.env.LORA_STUDIO_HOME = home;
  const started = await startMain(electron, { platform: 'linux' });
  assert.ok(started);
  main = started;
  assert.equal(StandInWindow.all.length, 1);
  win = StandInWindow.all[0];
});

after(async () => {
  await main.services.close();
  delete process.env.LORA_STUDIO_HOME;
  rmSync(tmp, { recursive: true, force: true });
});

describe('electron main', () => {
  test('registers one IPC handler for every protocol request, and nothing else', () => {
    const expected = STUDIO_METHODS.map((m) => `studio:${m}`).sort();
    assert.deepEqual([...handlers.keys()].sort(), expected);
    assert.deepEqual([...listeners.keys()], ['studio:startDrag']);
  });

  test('every handler answers with a reply envelope, using the studio home from LORA_STUDIO_HOME', async () => {
    const info = await invoke('app.info', {});
    assert.ok(info.ok);
    assert.equal(info.result.host, 'electron');
    assert.equal(info.result.home, home);
    for (const method of STUDIO_METHODS) {
      const reply = await invoke(method, { id: 'no-such-id', path: join(tmp, 'nothing-here'), destination: tmp, fileName: 'x.txt', content: 'plain text\n', config: {} });
      assert.equal(typeof reply.ok, 'boolean', method);
      if (!reply.ok) assert.ok(reply.error.message.length > 0, `${method} refused without a message`);
    }
  });

  test('refusals keep their field instead of becoming IPC exceptions', async () => {
    const notModel = join(tmp, 'not-a-model');
    mkdirSync(notModel);
    const reply = await invoke('models.inspect', { path: notModel });
    assert.equal(reply.ok, false);
    if (!reply.ok) {
      assert.equal(reply.error.field, 'path');
      assert.match(reply.error.message, /config\.json/);
    }
    const rank = await invoke('runs.start', { config: { modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, lora: { r: 0, alpha: 16, dropout: 0, targets: ['q_proj'] }, train: { learningRate: 1e-3, steps: 1, batchSize: 1, maxSeqLen: 96 } } });
    assert.equal(rank.ok, false);
    if (!rank.ok) assert.deepEqual(rank.error.fieldErrors?.map((f) => f.field), ['lora.r']);
  });

  test('the window: sandboxed, isolated, with the compiled preload, the icon and the built UI', () => {
    const prefs = win.options.webPreferences ?? {};
    assert.equal(prefs.sandbox, true);
    assert.equal(prefs.contextIsolation, true);
    assert.equal(prefs.nodeIntegration, false);
    assert.equal(basename(prefs.preload ?? ''), 'preload.cjs');
    assert.ok(existsSync(join(dirname(prefs.preload ?? ''), 'preload.cts')), 'preload.cjs is emitted from electron/preload.cts');
    assert.ok(existsSync(String(win.options.icon)), 'window icon exists');
    if (existsSync(main.paths.rendererIndex)) assert.equal(win.loaded, main.paths.rendererIndex);
    else assert.match(win.loaded ?? '', /^data:text\/html.*npm%20run%20build/);
    assert.deepEqual(win.webContents.openHandler?.({ url: 'https://example.com' }), { action: 'deny' });
    let prevented = false;
    win.webContents.navigateListener?.({ preventDefault: () => (prevented = true) }, 'https://example.com');
    assert.ok(prevented, 'navigation away from the studio is refused');
  });

  test('native dialogs answer dialog.pickFolder and dialog.pickFile', async () => {
    const folder = await invoke('dialog.pickFolder', { title: 'Model folder' });
    assert.deepEqual(folder, { ok: true, result: { path: '/picked/by/user' } });
    assert.deepEqual(dialogCalls.at(-1), { title: 'Model folder', properties: ['openDirectory'] });
    const file = await invoke('dialog.pickFile', { extensions: ['jsonl', '.csv'] });
    assert.ok(file.ok);
    const opts = dialogCalls.at(-1) as { properties: string[]; filters: { extensions: string[] }[] };
    assert.deepEqual(opts.properties, ['openFile']);
    assert.deepEqual(opts.filters[0].extensions, ['jsonl', 'csv']);
  });

  test('dragging an adapter calls startDrag with its PEFT folder on disk and an icon', async () => {
    const id = registerAdapter('adapter-drag-test');
    const sender = new StandInWebContents();
    const listener = listeners.get('studio:startDrag');
    assert.ok(listener);
    listener({ sender }, id);
    await new Promise((r) => setImmediate(r));
    assert.equal(sender.drags.length, 1);
    const { file, icon } = sender.drags[0];
    assert.ok(file && existsSync(file), `drag file ${file} exists`);
    assert.equal(file, join(home, 'adapters', id));
    assert.ok(typeof icon === 'string' && existsSync(icon), 'drag icon exists');
    assert.deepEqual([...readFileSync(icon as string).subarray(1, 4)], [...Buffer.from('PNG')]);
    const parsed = assertPeftAdapter(readFolder(file), SAMPLE_MODEL_DIR);
    assert.equal(parsed.r, 8);
    assert.equal(parsed.keys.length, 2 * 4 * 2);

    // The request form does the same, on the window that asked.
    const reply = await invoke('adapters.startDrag', { id }, sender);
    assert.deepEqual(reply, { ok: true, result: { path: file } });
    assert.equal(sender.drags.length, 2);

    // An unknown adapter starts no drag and tells the window why.
    listener({ sender }, 'no-such-adapter');
    await new Promise((r) => setImmediate(r));
    assert.equal(sender.drags.length, 2);
    const told = sender.sent.at(-1)?.args[0] as StudioEventMessage<'run.log'>;
    assert.match(told.data.message, /no adapter with id "no-such-adapter"/);
  });

  test('the preload, run as a sandboxed CommonJS script, bridges requests, events and drags to main', async () => {
    const source = readFileSync(join(repoRoot, 'electron', 'preload.cts'), 'utf8');
    const js = ts.transpileModule(source, {
      fileName: 'preload.cts',
      compilerOptions: { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2023, verbatimModuleSyntax: true },
    }).outputText;
    assert.doesNotMatch(js, /^\s*(import|export)\b/m, 'a sandboxed preload cannot hold ES module syntax');
    const required: string[] = [];
    let exposed: { key: string; api: StudioBridge } | null = null;
    const renderer = win.webContents;
    const ipcRenderer = {
      invoke: (channel: string, ...args: unknown[]) => {
        const h = handlers.get(channel);
        return h ? Promise.resolve(h({ sender: renderer }, ...args)) : Promise.reject(new Error(`No handler registered for '${channel}'`));
      },
      send: (channel: string, ...args: unknown[]) => listeners.get(channel)?.({ sender: renderer }, ...args),
      on: (channel: string, l: (event: unknown, ...args: unknown[]) => void) => renderer.rendererListeners.set(channel, [...(renderer.rendererListeners.get(channel) ?? []), l]),
      removeListener: (channel: string, l: (event: unknown, ...args: unknown[]) => void) => renderer.rendererListeners.set(channel, (renderer.rendererListeners.get(channel) ?? []).filter((x) => x !== l)),
    };
    const sandboxRequire = (name: string) => {
      required.push(name);
      if (name !== 'electron') throw new Error(`module not found: ${name} (sandboxed preloads may only require electron)`);
      return {
        ipcRenderer,
        contextBridge: { exposeInMainWorld: (key: string, api: StudioBridge) => (exposed = { key, api }) },
        webUtils: { getPathForFile: (file: { name: string }) => `/dropped/${file.name}` },
      };
    };
    const module = { exports: {} };
    // How Electron runs a sandboxed preload: the source wrapped in a function given require, process, exports, module.
    const wrapper = vm.runInNewContext(`(function (require, process, exports, module) {${js}\n})`, {}) as (...args: unknown[]) => void;
    wrapper(sandboxRequire, {}, module.exports, module);
    assert.deepEqual(required, ['electron']);
    const bridge = (exposed as { key: string; api: StudioBridge } | null)?.api;
    assert.equal((exposed as { key: string } | null)?.key, 'studio');
    assert.ok(bridge);

    const info = await bridge.request('app.info', {});
    assert.ok(info.ok);
    assert.equal(info.result.host, 'electron');
    assert.equal(bridge.pathForFile({ name: 'data.jsonl' } as File), '/dropped/data.jsonl');

    const received: StudioEventMessage[] = [];
    const off = bridge.onEvent((m) => received.push(m));
    const run = await bridge.request('runs.start', { config: { modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, lora: { r: 2, alpha: 4, dropout: 0, targets: ['q_proj'] }, train: { learningRate: 1e-3, steps: 1, batchSize: 1, maxSeqLen: 96 } } });
    assert.ok(run.ok, run.ok ? '' : run.error.message);
    await bridge.request('runs.cancel', { id: run.result.id });
    await main.services.whenIdle();
    const updates = received.filter((m) => m.event === 'run.updated' && (m.data as { id: string }).id === run.result.id);
    assert.equal((updates[0].data as { state: string }).state, 'pending');
    off();
    const before = received.length;
    await bridge.request('runs.start', { config: { modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, lora: { r: 0, alpha: 4, dropout: 0, targets: ['q_proj'] }, train: { learningRate: 1e-3, steps: 1, batchSize: 1, maxSeqLen: 96 } } });
    win.webContents.send('studio:event', { event: 'adapters.changed', data: [] });
    assert.equal(received.length, before, 'no events after the listener was removed');

    const id = registerAdapter('adapter-preload-drag');
    const drags = renderer.drags.length;
    bridge.startDrag(id);
    await new Promise((r) => setImmediate(r));
    assert.equal(renderer.drags.length, drags + 1);
    assert.equal(renderer.drags.at(-1)?.file, join(home, 'adapters', id));
  });

  test('closing the window keeps a run going; the app quits once nothing runs, and activate reopens the window', async () => {
    const run = await invoke('runs.start', { config: { modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, lora: { r: 2, alpha: 4, dropout: 0, targets: ['q_proj'] }, train: { learningRate: 1e-3, steps: 2, batchSize: 1, maxSeqLen: 96 } } });
    assert.ok(run.ok);
    for (const w of StandInWindow.getAllWindows()) w.close();
    const quitsBefore = quits;
    appListeners.get('window-all-closed')?.(noEvent);
    assert.equal(main.services.hasActiveRuns(), true);
    assert.equal(quits, quitsBefore, 'the app must not quit while a run is active');
    await main.services.whenIdle();
    await new Promise((r) => setImmediate(r));
    assert.equal(quits, quitsBefore + 1, 'the app quits when the run is over and no window is open');

    appListeners.get('activate')?.(noEvent);
    assert.equal(StandInWindow.all.length, 1);
    appListeners.get('second-instance')?.(noEvent);
    assert.equal(StandInWindow.all[0].focused, 1);
    appListeners.get('window-all-closed')?.(noEvent);
    assert.equal(quits, quitsBefore + 2);
  });

  // Last: it closes the services.
  test('quitting first waits for the services to close (a running run checkpoints), then quits for real', async () => {
    const quitsBefore = quits;
    let prevented = 0;
    appListeners.get('before-quit')?.({ preventDefault: () => void prevented++ });
    assert.equal(prevented, 1, 'the first quit is held back until the services have closed');
    assert.equal(quits, quitsBefore);
    const deadline = Date.now() + 20_000;
    while (quits === quitsBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(quits, quitsBefore + 1, 'the app quits once the services have closed');
    appListeners.get('before-quit')?.({ preventDefault: () => void prevented++ });
    assert.equal(prevented, 1, 'the second quit goes through');
  });

  test('a data folder another live studio holds: the app says who (pid, address) and quits instead of starting', async () => {
    const other = join(tmp, 'held-home');
    mkdirSync(other, { recursive: true });
    // A live process that is not this one holds the lock.
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(other, 'studio.lock'), JSON.stringify({ pid: holder.pid, host: hostname(), kind: 'web', startedAt: '2026-12-03T07:00:00.000Z', url: 'http://127.0.0.1:7420' }));
      const quitsBefore = quits;
      const windowsBefore = StandInWindow.all.length;
      assert.equal(await startMain(electron, { platform: 'linux', home: other }), null);
      assert.equal(quits, quitsBefore + 1);
      assert.equal(StandInWindow.all.length, windowsBefore, 'no window opened');
      const box = errorBoxes.at(-1);
      assert.ok(box, 'an error box was shown');
      assert.ok(box.content.includes(`another LoRA Studio (web host, pid ${holder.pid} at http://127.0.0.1:7420`), box.content);
      assert.ok(box.content.includes(other), box.content);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
