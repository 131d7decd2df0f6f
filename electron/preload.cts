/**
 * Preload of the studio window: puts `window.studio` (common/bridge.ts) in the page and nothing else.
 *
 * Sandboxed preloads run as plain CommonJS scripts that may require only 'electron' (not our own files), hence the
 * .cts extension (tsc emits preload.cjs) and the channel names written out here; electron/main.ts registers the
 * same ones from common/bridge.ts, and test/electron/main.test.ts runs this file against main to prove they match.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- the one CommonJS file; see above */
import type { StudioBridge } from '../common/bridge.ts';
import type { StudioEventMessage } from '../common/protocol.ts';
import electron = require('electron');

const { contextBridge, ipcRenderer, webUtils } = electron;

const bridge: StudioBridge = {
  request: (method, params) => ipcRenderer.invoke(`studio:${method}`, params),
  onEvent(listener) {
    const forward = (_event: unknown, message: StudioEventMessage) => listener(message);
    ipcRenderer.on('studio:event', forward);
    return () => {
      ipcRenderer.removeListener('studio:event', forward);
    };
  },
  startDrag(adapterId) {
    ipcRenderer.send('studio:startDrag', adapterId);
  },
  // File.path is gone from Electron 32 on; webUtils is the supported way to the dropped file on disk.
  pathForFile: (file) => webUtils.getPathForFile(file),
};

contextBridge.exposeInMainWorld('studio', bridge);
