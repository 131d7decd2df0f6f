/**
 * What the Compute settings show for a backend choice, given the services' probe: which backend a run will use, on
 * which adapter, and whether the choice will fail or be slow. The engine decides with the same probe and policy
 * (engine/train/backend-select.ts), so this line tells the truth about the run.
 */
import type { BackendInfo, RunConfig, StudioResult } from '../../../common/protocol.ts';

export type BackendProbe = StudioResult<'backends.probe'>;

export interface BackendView {
  /** What a run will use; null while the probe has not answered or when the choice cannot run. */
  resolved: BackendInfo['id'] | null;
  /** One line under the select, e.g. "WebGPU on NVIDIA GeForce RTX 4090". */
  line: string;
  /** The run would fail (explicit WebGPU without an adapter). */
  error: string | null;
  /** The run will work but not as the user may expect (a software adapter). */
  warning: string | null;
}

const LABEL: Record<BackendInfo['id'], string> = { cpu: 'CPU', webgpu: 'WebGPU' };

function info(probe: BackendProbe, id: BackendInfo['id']): BackendInfo | undefined {
  return probe.backends.find((b) => b.id === id);
}

function onWhat(b: BackendInfo | undefined): string {
  if (!b || b.id === 'cpu') return LABEL.cpu;
  return `${LABEL.webgpu} on ${b.name ?? 'an unnamed adapter'}`;
}

export function backendView(choice: RunConfig['backend'], probe: BackendProbe | null): BackendView {
  if (choice === 'cpu') return { resolved: 'cpu', line: 'CPU (the reference backend: bit-identical runs and resumes)', error: null, warning: null };
  if (probe === null) return { resolved: null, line: 'looking for a GPU…', error: null, warning: null };
  const gpu = info(probe, 'webgpu');
  if (choice === 'auto') {
    const resolved = probe.auto;
    const why = resolved === 'cpu' && gpu ? ` — ${gpu.available ? (gpu.reason ?? 'no hardware GPU') : `no WebGPU adapter${gpu.reason ? ` (${gpu.reason})` : ''}`}` : '';
    return { resolved, line: `Auto → ${onWhat(info(probe, resolved))}${why}`, error: null, warning: null };
  }
  if (!gpu || !gpu.available) {
    return { resolved: null, line: 'WebGPU: no adapter', error: `this machine has no WebGPU adapter${gpu?.reason ? ` (${gpu.reason})` : ''}; choose Auto or CPU`, warning: null };
  }
  return { resolved: 'webgpu', line: onWhat(gpu), error: null, warning: gpu.software ? 'a software adapter: expect training to be slower than on the CPU backend' : null };
}

/** The option's text in the select: unavailable backends say so. */
export function backendOptionLabel(choice: RunConfig['backend'], probe: BackendProbe | null): string {
  if (choice === 'auto') return 'Auto';
  const b = probe ? info(probe, choice) : undefined;
  return `${LABEL[choice]}${b && !b.available ? ' (unavailable)' : ''}`;
}
