/**
 * What the Electron preload puts on `window.studio`. The renderer uses it instead of HTTP when it runs inside the
 * desktop app; every call lands in the same services the web host drives.
 */
import type { StudioEventMessage, StudioMethod, StudioParams, StudioReply } from './protocol.ts';

export interface StudioBridge {
  /** Never rejects for a refused request: the reply envelope carries the error (message, field, file, line). */
  request<M extends StudioMethod>(method: M, params: StudioParams<M>): Promise<StudioReply<M>>;
  /** Pushed events; returns a function that stops the listener. */
  onEvent(listener: (message: StudioEventMessage) => void): () => void;
  /** Call from a `dragstart` handler: the OS drag carries the adapter folder (adapter_config.json + weights). */
  startDrag(adapterId: string): void;
  /** The disk path of a File dropped on the window or picked in an <input type="file"> ('' when it has none). */
  pathForFile(file: File): string;
}

/** IPC channel names shared by electron/main.ts and electron/preload.cts. */
export const IPC_REQUEST_PREFIX = 'studio:';
export const IPC_EVENT_CHANNEL = 'studio:event';
export const IPC_START_DRAG_CHANNEL = 'studio:startDrag';
