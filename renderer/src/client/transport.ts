/**
 * How the renderer talks to the services. One interface, two implementations: the Electron preload bridge
 * (electron-client.ts) and HTTP + WebSocket to the web host (web-client.ts). Components never know which one runs.
 */
import type {
  StudioErrorInfo,
  StudioEventMessage,
  StudioMethod,
  StudioParams,
  StudioReply,
  StudioResult,
} from '../../../common/protocol.ts';

/** A request the services refused or could not answer; `info` says what and where (field, file, line). */
export class RequestError extends Error {
  readonly info: StudioErrorInfo;
  readonly method: StudioMethod;
  constructor(method: StudioMethod, info: StudioErrorInfo) {
    super(info.message);
    this.name = 'RequestError';
    this.method = method;
    this.info = info;
  }
}

/** 'unauthorized': the host answers but refuses this page's token (missing, or from an earlier session). */
export type ConnectionState = 'connecting' | 'open' | 'closed' | 'unauthorized';

export interface StudioClient {
  readonly host: 'electron' | 'web';
  /** Resolves with the result, or rejects with a RequestError. */
  request<M extends StudioMethod>(method: M, params: StudioParams<M>): Promise<StudioResult<M>>;
  /** Pushed events; returns an unsubscribe function. */
  onEvent(listener: (message: StudioEventMessage) => void): () => void;
  /** Event-channel state; 'open' after every (re)connect so the store can fetch what it missed. */
  onConnection(listener: (state: ConnectionState) => void): () => void;
  /** Web: why the host refused the token, once the state is 'unauthorized'. */
  authProblem?(): string | null;
  /** Electron: hand the drag to the OS with the adapter folder. */
  startDrag?(adapterId: string): void;
  /** Electron: where a dropped or picked File lies on disk ('' when it has no path). */
  pathForFile?(file: File): string;
  /** Web: absolute URL of the adapter zip, token included, for downloads and DownloadURL drags. */
  adapterZipUrl?(adapterId: string): string;
}

/** Turns a reply envelope into a result or a thrown RequestError. */
export function unwrapReply<M extends StudioMethod>(method: M, reply: unknown): StudioResult<M> {
  if (typeof reply !== 'object' || reply === null || !('ok' in reply)) {
    throw new RequestError(method, { message: `${method}: the studio sent a reply this window does not understand` });
  }
  const r = reply as StudioReply<M>;
  if (r.ok) return r.result;
  const info = r.error;
  if (typeof info !== 'object' || info === null || typeof info.message !== 'string') {
    throw new RequestError(method, { message: `${method} failed without a message` });
  }
  throw new RequestError(method, info);
}

/** Any thrown value as StudioErrorInfo, so components render one shape. */
export function errorInfo(e: unknown): StudioErrorInfo {
  if (e instanceof RequestError) return e.info;
  if (e instanceof Error) return { message: e.message };
  return { message: String(e) };
}
