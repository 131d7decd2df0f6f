import { ElectronClient, findBridge } from './electron-client.ts';
import type { StudioClient } from './transport.ts';
import { WebClient, takeToken } from './web-client.ts';

/** The Electron bridge when the preload put one on window, else the web host this page came from. */
export function createClient(): StudioClient {
  const bridge = findBridge();
  if (bridge) return new ElectronClient(bridge);
  return new WebClient(window.location.origin, takeToken());
}
