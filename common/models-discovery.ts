/** Messages between the services and the model discovery worker (engine/io/model-discovery-worker.ts). */
import type { LocalModelsInfo } from './protocol.ts';

export interface DiscoveryCommand {
  id: number;
  /** The environment and home folder the stores are looked for with (the services' own, at the time of the request). */
  env: Record<string, string | undefined>;
  home: string;
  /** The fingerprint of the answer the services hold, or null to always look. */
  previousFingerprint: string | null;
}

export type DiscoveryReply =
  | { type: 'found'; id: number; fingerprint: string; info: LocalModelsInfo }
  | { type: 'unchanged'; id: number }
  | { type: 'failed'; id: number; message: string };
