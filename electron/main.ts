/**
 * Electron main process: owns the studio services (so training keeps going with no window open), opens the window,
 * and carries every protocol request from the preload bridge to the services over IPC — one `ipcMain.handle`
 * channel per method (`studio:<method>`), replies as StudioReply envelopes so errors keep their field/file/line.
 *
 * `electron` is imported only when this file really runs as Electron's main process; everything else goes through
 * `startMain(electron)`, which a test calls with a stand-in.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserWindowConstructorOptions, Item, OpenDialogOptions, OpenDialogReturnValue, WindowOpenHandlerResponse } from 'electron';
import { IPC_EVENT_CHANNEL, IPC_REQUEST_PREFIX, IPC_START_DRAG_CHANNEL } from '../common/bridge.ts';
import { STUDIO_METHODS, type StudioEventMessage, type StudioReply, type StudioMethod } from '../common/protocol.ts';
import { installProcessGuard, withRequest } from '../host/process-guard.ts';
import { toStudioErrorInfo } from '../host/services/errors.ts';
import { acquireHomeLock } from '../host/services/home-lock.ts';
import { assertWritableHome, defaultHomeDir, openHome } from '../host/services/home.ts';
import { createStudioServices, type StudioServices } from '../host/services/studio-services.ts';

/** The renderer side of an IPC message, as far as main uses it. */
export interface SenderLike {
  send(channel: string, ...args: unknown[]): void;
  startDrag(item: Item): void;
  isDestroyed(): boolean;
}
export interface IpcEventLike {
  sender: SenderLike;
}
export interface WindowLike {
  webContents: SenderLike & {
    setWindowOpenHandler(handler: (details: { url: string }) => WindowOpenHandlerResponse): void;
    on(event: 'will-navigate', listener: (event: { preventDefault(): void }, url: string) => void): unknown;
  };
  loadFile(path: string): Promise<void>;
  loadURL(url: string): Promise<void>;
  isDestroyed(): boolean;
  isMinimized(): boolean;
  restore(): void;
  focus(): void;
}

/** The part of the `electron` module main uses; the real module fits it, and so does a test's stand-in. */
export interface ElectronShell {
  app: {
    whenReady(): Promise<unknown>;
    on(event: 'window-all-closed' | 'activate' | 'second-instance' | 'before-quit', listener: (event: { preventDefault(): void }) => void): unknown;
    quit(): void;
    getAppPath(): string;
    requestSingleInstanceLock(): boolean;
  };
  BrowserWindow: {
    new (options: BrowserWindowConstructorOptions): WindowLike;
    getAllWindows(): WindowLike[];
  };
  ipcMain: {
    handle(channel: string, listener: (event: IpcEventLike, ...args: unknown[]) => unknown): void;
    on(channel: string, listener: (event: IpcEventLike, ...args: unknown[]) => void): unknown;
  };
  dialog: {
    showOpenDialog(options: OpenDialogOptions): Promise<OpenDialogReturnValue>;
    showErrorBox(title: string, content: string): void;
  };
}

export interface MainOptions {
  /** Studio data folder; LORA_STUDIO_HOME or the OS app-data folder by default. */
  home?: string;
  platform?: NodeJS.Platform;
}

export interface StudioMain {
  services: StudioServices;
  createWindow(): WindowLike;
  /** Paths main hands to Electron, so a test can check they are real. */
  paths: { appRoot: string; rendererIndex: string; preload: string; icon: string; dragIcon: string };
}

const here = dirname(fileURLToPath(import.meta.url));

export async function startMain(electron: ElectronShell, options: MainOptions = {}): Promise<StudioMain | null> {
  const { app, BrowserWindow, ipcMain, dialog } = electron;
  const platform = options.platform ?? process.platform;
  // A second `npm start` brings the running studio (and its training) to the front instead of starting another.
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return null;
  }

  // A stray rejection in the services must not close the windows and stop the training (process-guard.ts).
  installProcessGuard();

  // One studio per data folder: a web host (or another desktop build) already on it keeps it (home-lock.ts).
  let lock;
  try {
    const studioHome = openHome(options.home ?? defaultHomeDir());
    assertWritableHome(studioHome);
    lock = acquireHomeLock(studioHome.root, 'electron');
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    console.error(`lora-studio: ${message}`);
    dialog.showErrorBox('LoRA Studio cannot start', message);
    app.quit();
    return null;
  }
  const homeLock = lock;

  const appRoot = app.getAppPath();
  const paths = {
    appRoot,
    rendererIndex: join(appRoot, 'dist', 'renderer', 'index.html'),
    // tsc emits electron/preload.cts as preload.cjs: sandboxed preloads must be CommonJS scripts.
    preload: join(here, 'preload.cjs'),
    icon: join(appRoot, 'assets', 'icon.png'),
    dragIcon: join(appRoot, 'assets', 'drag-icon.png'),
  };

  const services = createStudioServices({
    home: options.home ?? defaultHomeDir(),
    host: 'electron',
    dialogs: {
      async pickFolder({ title }) {
        const r = await dialog.showOpenDialog({ title: title ?? 'Choose a folder', properties: ['openDirectory'] });
        return r.canceled || r.filePaths.length === 0 ? null : r.filePaths[0];
      },
      async pickFile({ title, extensions }) {
        const filters = extensions && extensions.length > 0 ? [{ name: extensions.join(', '), extensions: extensions.map((e) => e.replace(/^\./, '')) }, { name: 'All files', extensions: ['*'] }] : undefined;
        const r = await dialog.showOpenDialog({ title: title ?? 'Choose a file', properties: ['openFile'], ...(filters ? { filters } : {}) });
        return r.canceled || r.filePaths.length === 0 ? null : r.filePaths[0];
      },
    },
  });

  const dragTo = (sender: SenderLike) => (path: string) => sender.startDrag({ file: path, icon: existsSync(paths.dragIcon) ? paths.dragIcon : paths.icon });

  for (const method of STUDIO_METHODS) {
    ipcMain.handle(`${IPC_REQUEST_PREFIX}${method}`, async (event, params): Promise<StudioReply<StudioMethod>> => {
      try {
        const result = await withRequest(`ipc ${method}`, () => services.handle(method, params, { startDrag: dragTo(event.sender) }));
        return { ok: true, result };
      } catch (e) {
        return { ok: false, error: toStudioErrorInfo(e) };
      }
    });
  }
  // The drag must start while the mouse button is still down, so the preload fires this without awaiting a reply.
  ipcMain.on(IPC_START_DRAG_CHANNEL, (event, adapterId) => {
    services.handle('adapters.startDrag', { id: adapterId }, { startDrag: dragTo(event.sender) }).catch((e: unknown) => {
      event.sender.send(IPC_EVENT_CHANNEL, {
        event: 'run.log',
        data: { runId: '', level: 'error', message: `cannot drag adapter ${String(adapterId)}: ${toStudioErrorInfo(e).message}` },
      } satisfies StudioEventMessage<'run.log'>);
    });
  });

  services.onEvent((message) => {
    for (const win of BrowserWindow.getAllWindows()) {
      if (!win.isDestroyed() && !win.webContents.isDestroyed()) win.webContents.send(IPC_EVENT_CHANNEL, message);
    }
  });

  function createWindow(): WindowLike {
    const win = new BrowserWindow({
      width: 1320,
      height: 880,
      minWidth: 960,
      minHeight: 640,
      title: 'LoRA Studio',
      icon: paths.icon,
      backgroundColor: '#0f172a',
      webPreferences: { preload: paths.preload, contextIsolation: true, sandbox: true, nodeIntegration: false },
    });
    // The window shows only the studio: links open nowhere, navigation away is refused.
    win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
    win.webContents.on('will-navigate', (event) => event.preventDefault());
    if (existsSync(paths.rendererIndex)) {
      void win.loadFile(paths.rendererIndex);
    } else {
      const html = `<h1>LoRA Studio</h1><p>The UI is not built: ${paths.rendererIndex} is missing. Run <code>npm run build</code>, or start with <code>npm start</code>.</p>`;
      void win.loadURL(`data:text/html;charset=utf-8,${encodeURIComponent(html)}`);
    }
    return win;
  }

  app.on('second-instance', () => {
    const win = BrowserWindow.getAllWindows()[0];
    if (!win) {
      createWindow();
      return;
    }
    if (win.isMinimized()) win.restore();
    win.focus();
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
  app.on('window-all-closed', () => {
    if (platform === 'darwin') return;
    // Closing the window does not stop training: the app quits once nothing runs or waits any more.
    if (services.hasActiveRuns()) {
      void services.whenIdle().then(() => {
        if (BrowserWindow.getAllWindows().length === 0) app.quit();
      });
      return;
    }
    app.quit();
  });
  // Quitting waits for the services to close: an executing run writes its checkpoint first, so the next start
  // resumes from the moment of quitting rather than from the last periodic checkpoint.
  let closed = false;
  app.on('before-quit', (event) => {
    if (closed) return;
    event.preventDefault();
    void services.close().finally(() => {
      homeLock.release();
      closed = true;
      app.quit();
    });
  });

  await app.whenReady();
  createWindow();
  return { services, createWindow, paths };
}

// Electron's main process (process.type 'browser'): start for real. Under plain Node (tests) nothing runs.
if ((process as { type?: string }).type === 'browser') {
  const electron = await import('electron');
  await startMain(electron);
}
