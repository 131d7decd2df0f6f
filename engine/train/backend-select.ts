/**
 * Which compute backend a run uses. RunConfig.backend is 'auto' | 'cpu' | 'webgpu':
 *   auto    webgpu when a hardware WebGPU adapter exists, else cpu. A software adapter (llvmpipe, lavapipe,
 *           SwiftShader, a fallback/CPU adapter) counts as absent: it is slower than the cpu backend.
 *   cpu     always (the reference; bit-identical runs and resumes).
 *   webgpu  whatever adapter there is, software ones included; none at all is an error naming the `backend` field.
 * The policy is a pure function of a probe, so the services (for the UI) and the engine worker (at run start) decide
 * the same way.
 */
import type { BackendInfo } from '../../common/protocol.ts';
import { probeAdapter } from '../backend/webgpu/device.ts';

export type BackendChoice = 'auto' | 'cpu' | 'webgpu';
export type BackendId = BackendInfo['id'];

export interface AdapterProbe {
  available: boolean;
  name: string | null;
  error: string | null;
  software: boolean;
}

export interface ResolvedBackend {
  backend: BackendId;
  /** The WebGPU adapter's name when the backend is webgpu. */
  adapterName: string | null;
  /** One line saying why (logged at run start, shown next to the choice). */
  reason: string;
}

/** An explicit backend that this machine cannot run; `field` lets the UI mark the backend select. */
export class BackendUnavailableError extends Error {
  readonly field = 'backend';
  constructor(message: string) {
    super(message);
    this.name = 'BackendUnavailableError';
  }
}

export function resolveBackend(choice: BackendChoice, probe: AdapterProbe): ResolvedBackend {
  switch (choice) {
    case 'cpu':
      return { backend: 'cpu', adapterName: null, reason: 'cpu backend chosen' };
    case 'webgpu': {
      if (!probe.available || probe.name === null) {
        throw new BackendUnavailableError(
          `backend: webgpu was chosen, but this machine has no WebGPU adapter (${probe.error ?? 'none found'}); choose cpu or auto, or install a Vulkan/Metal/D3D12 driver`,
        );
      }
      const note = probe.software ? ' (a software adapter: expect it to be slower than the cpu backend)' : '';
      return { backend: 'webgpu', adapterName: probe.name, reason: `webgpu backend chosen, on ${probe.name}${note}` };
    }
    case 'auto':
      if (probe.available && probe.name !== null && !probe.software) return { backend: 'webgpu', adapterName: probe.name, reason: `auto: WebGPU adapter ${probe.name}` };
      return {
        backend: 'cpu',
        adapterName: null,
        reason: probe.available ? `auto: cpu, because ${probe.name ?? 'the WebGPU adapter'} is a software adapter (slower than the cpu backend)` : `auto: cpu, no WebGPU adapter (${probe.error ?? 'none found'})`,
      };
    default: {
      const never: never = choice;
      throw new BackendUnavailableError(`backend: unknown backend ${JSON.stringify(never)} (choose auto, cpu or webgpu)`);
    }
  }
}

/** Probes the adapter (never throws) and resolves the choice. */
export async function selectBackend(choice: BackendChoice, probe: () => Promise<AdapterProbe> = probeAdapter): Promise<ResolvedBackend> {
  return resolveBackend(choice, choice === 'cpu' ? { available: false, name: null, error: 'not probed', software: false } : await probe());
}

/** What 'backends.probe' answers: every backend with its availability, and what `auto` resolves to. */
export function describeBackends(probe: AdapterProbe): { auto: BackendId; backends: BackendInfo[] } {
  const gpu: BackendInfo = probe.available
    ? { id: 'webgpu', available: true, name: probe.name, reason: probe.software ? 'software adapter: slower than the cpu backend, so auto does not pick it' : null, software: probe.software }
    : { id: 'webgpu', available: false, name: null, reason: probe.error ?? 'no WebGPU adapter' };
  return { auto: resolveBackend('auto', probe).backend, backends: [{ id: 'cpu', available: true, name: 'CPU', reason: null }, gpu] };
}
