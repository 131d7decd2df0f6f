/**
 * StudioClient for a browser talking to the web host: POST /api/<method> for requests, a WebSocket on /events
 * (reconnecting) for pushed events. The token comes from the page URL once and is kept in sessionStorage, so a
 * reload still works after the token was taken out of the address bar.
 */
import type { StudioEventMessage, StudioMethod, StudioParams, StudioResult } from '../../../common/protocol.ts';
import { RequestError, unwrapReply, type ConnectionState, type StudioClient } from './transport.ts';

const TOKEN_KEY = 'lora-studio.token';

/** Reads `?token=` from the address, remembers it for this tab and removes it from the address bar. */
export function takeToken(): string {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    try {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      url.searchParams.delete('token');
      window.history.replaceState(null, '', url.toString());
    } catch {
      // Storage can be off (private mode); then the token simply stays in the URL.
    }
    return fromUrl;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export class WebClient implements StudioClient {
  readonly host = 'web' as const;
  private readonly origin: string;
  private readonly token: string;
  private readonly eventListeners = new Set<(m: StudioEventMessage) => void>();
  private readonly connectionListeners = new Set<(s: ConnectionState) => void>();
  private socket: WebSocket | null = null;
  private state: ConnectionState = 'closed';
  private retryMs = 500;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private refused: string | null = null;

  constructor(origin: string, token: string) {
    this.origin = origin;
    this.token = token;
  }

  async request<M extends StudioMethod>(method: M, params: StudioParams<M>): Promise<StudioResult<M>> {
    let response: Response;
    try {
      response = await fetch(`${this.origin}/api/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-studio-token': this.token },
        body: JSON.stringify(params),
      });
    } catch {
      throw new RequestError(method, { message: `cannot reach the studio at ${this.origin} (is 'lora-studio serve' still running?)` });
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      const hint = response.status === 401 || response.status === 403 ? ' — open the exact URL the server printed (it carries the token)' : '';
      throw new RequestError(method, { message: `${method}: HTTP ${response.status} ${text.slice(0, 200)}${hint}` });
    }
    return unwrapReply(method, body);
  }

  onEvent(listener: (message: StudioEventMessage) => void): () => void {
    this.eventListeners.add(listener);
    this.connect();
    return () => this.eventListeners.delete(listener);
  }

  onConnection(listener: (state: ConnectionState) => void): () => void {
    this.connectionListeners.add(listener);
    listener(this.state);
    this.connect();
    return () => this.connectionListeners.delete(listener);
  }

  authProblem(): string | null {
    return this.refused;
  }

  adapterZipUrl(adapterId: string): string {
    return `${this.origin}/download/adapter/${encodeURIComponent(adapterId)}.zip?token=${encodeURIComponent(this.token)}`;
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    for (const l of this.connectionListeners) l(state);
  }

  /**
   * A socket that closes before it opened is either a host that is down or one that refuses the token; only a
   * request tells them apart (a browser hides the upgrade's status). Returns the refusal, or null.
   */
  private async tokenRefusal(): Promise<string | null> {
    if (!this.token) return 'this address has no token: open the URL that `lora-studio serve` printed (it ends in ?token=…)';
    try {
      const response = await fetch(`${this.origin}/api/app.info`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-studio-token': this.token }, body: '{}' });
      if (response.status !== 401 && response.status !== 403) return null;
      const body = (await response.json().catch(() => null)) as { error?: { message?: unknown } } | null;
      const message = typeof body?.error?.message === 'string' ? body.error.message : `the studio refused this page (HTTP ${response.status})`;
      return message;
    } catch {
      return null; // not reachable: a lost connection, not a token problem
    }
  }

  private connect(): void {
    if (this.socket || this.retryTimer || this.refused) return;
    if (!this.token) {
      this.refused = 'this address has no token: open the URL that `lora-studio serve` printed (it ends in ?token=…)';
      this.setState('unauthorized');
      return;
    }
    let opened = false;
    const wsOrigin = this.origin.replace(/^http/, 'ws');
    const socket = new WebSocket(`${wsOrigin}/events?token=${encodeURIComponent(this.token)}`);
    this.socket = socket;
    this.setState('connecting');
    socket.onopen = () => {
      opened = true;
      this.retryMs = 500;
      this.setState('open');
    };
    socket.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== 'string') return;
      let message: unknown;
      try {
        message = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (typeof message !== 'object' || message === null || typeof (message as { event?: unknown }).event !== 'string') return;
      for (const l of this.eventListeners) l(message as StudioEventMessage);
    };
    socket.onclose = () => {
      this.socket = null;
      this.setState('closed');
      // Back off so a stopped server is not hammered, but come back quickly after a short blip.
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.connect();
      }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
      if (opened) return;
      void this.tokenRefusal().then((refusal) => {
        if (!refusal) return;
        // A token never becomes right by waiting: stop retrying and say what to do.
        if (this.retryTimer) clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this.refused = refusal;
        this.setState('unauthorized');
      });
    };
  }
}
