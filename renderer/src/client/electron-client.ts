/** StudioClient over the Electron preload bridge (`window.studio`). */
import type { StudioBridge } from '../../../common/bridge.ts';
import type { StudioEventMessage, StudioMethod, StudioParams, StudioResult } from '../../../common/protocol.ts';
import { RequestError, unwrapReply, type ConnectionState, type StudioClient } from './transport.ts';

/** The preload's bridge, when this page runs inside the desktop app. */
export function findBridge(): StudioBridge | null {
  const candidate = (globalThis as { studio?: unknown }).studio;
  if (typeof candidate !== 'object' || candidate === null) return null;
  const b = candidate as Partial<StudioBridge>;
  return typeof b.request === 'function' && typeof b.onEvent === 'function' && typeof b.startDrag === 'function' ? (b as StudioBridge) : null;
}

export class ElectronClient implements StudioClient {
  readonly host = 'electron' as const;
  private readonly bridge: StudioBridge;

  constructor(bridge: StudioBridge) {
    this.bridge = bridge;
  }

  async request<M extends StudioMethod>(method: M, params: StudioParams<M>): Promise<StudioResult<M>> {
    let reply: unknown;
    try {
      // The bridge never rejects for a refused request; a rejection means IPC itself broke.
      reply = await this.bridge.request(method, params);
    } catch (e) {
      throw new RequestError(method, { message: `${method}: ${e instanceof Error ? e.message : String(e)}` });
    }
    return unwrapReply(method, reply);
  }

  onEvent(listener: (message: StudioEventMessage) => void): () => void {
    return this.bridge.onEvent(listener);
  }

  onConnection(listener: (state: ConnectionState) => void): () => void {
    // IPC is up for as long as the window lives.
    queueMicrotask(() => listener('open'));
    return () => {};
  }

  startDrag(adapterId: string): void {
    this.bridge.startDrag(adapterId);
  }

  pathForFile(file: File): string {
    // An older preload may lack it; then the file goes up by its content, as in a browser.
    return typeof this.bridge.pathForFile === 'function' ? this.bridge.pathForFile(file) : '';
  }
}
