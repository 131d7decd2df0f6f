import { useEffect, useState } from 'react';
import { KEEP_AS, QUANTIZE_AT_LOAD_FORMATS, type RunConfig, type StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { usePage } from '../stores/page.ts';
import { useStudio } from '../stores/studio.ts';
import { BASE_WEIGHT_CHOICES, baseWeightsHint } from './base-weights-view.ts';
import { FieldNote } from './FieldNote.tsx';
import { backendOptionLabel, backendView, type BackendProbe } from './backend-view.ts';

const CHOICES: RunConfig['backend'][] = ['auto', 'cpu', 'webgpu'];

/** Backend (Auto / CPU / WebGPU, with the adapter a run will use), precision, gradient checkpointing and base weights. */
export function ComputeSettings({ errorOf }: { errorOf: (field: string) => string | undefined }) {
  const client = useStudio((s) => s.client);
  const compute = useStudio((s) => s.form.compute);
  const setCompute = useStudio((s) => s.setCompute);
  const [probe, setProbe] = useState<BackendProbe | null>(null);
  const [probeError, setProbeError] = useState<StudioErrorInfo | null>(null);

  useEffect(() => {
    if (!client) return;
    let live = true;
    client.request('backends.probe', {}).then(
      (r) => live && setProbe(r),
      (e: unknown) => live && setProbeError(errorInfo(e)),
    );
    return () => {
      live = false;
    };
  }, [client]);

  const view = backendView(compute.backend, probe);
  const backendError = errorOf('backend') ?? view.error ?? undefined;
  const precisionError = errorOf('train.precision');
  const baseWeightsError = errorOf('train.baseWeights');
  const keepError = errorOf('train.baseWeightsKeep');
  const canKeep = (QUANTIZE_AT_LOAD_FORMATS as readonly string[]).includes(compute.baseWeights);

  return (
    <fieldset>
      <legend>Compute</legend>
      <div className="grid-3">
        <div className={`field${backendError ? ' field-invalid' : ''}`}>
          <label htmlFor="field-backend">Backend</label>
          <select id="field-backend" data-testid="field-backend" value={compute.backend} onChange={(e) => setCompute('backend', e.target.value as RunConfig['backend'])}>
            {CHOICES.map((c) => (
              <option key={c} value={c}>
                {backendOptionLabel(c, probe)}
              </option>
            ))}
          </select>
          <FieldNote
            error={backendError}
            errorTestId="error-backend"
            hintTestId="backend-resolved"
            hintData={{ 'data-backend': view.resolved ?? '' }}
            hint={`${probeError && compute.backend !== 'cpu' ? `could not look for a GPU: ${probeError.message}` : view.line}${view.warning ? ` (${view.warning})` : ''}`}
          />
        </div>
        <div className={`field${precisionError ? ' field-invalid' : ''}`}>
          <label htmlFor="field-train.precision">Precision</label>
          <select
            id="field-train.precision"
            data-testid="field-train.precision"
            value={compute.precision}
            onChange={(e) => setCompute('precision', e.target.value === 'fp16' ? 'fp16' : 'fp32')}
          >
            <option value="fp32">fp32</option>
            <option value="fp16">fp16 mixed (loss scaling)</option>
          </select>
          <FieldNote error={precisionError} errorTestId="error-train.precision" hint={compute.precision === 'fp16' ? 'f16 weights and activations, f32 LoRA and optimizer' : 'everything in f32'} />
        </div>
        <div className="field">
          <span className="label">Memory</span>
          <label className="check">
            <input
              type="checkbox"
              data-testid="field-train.gradientCheckpointing"
              checked={compute.gradientCheckpointing}
              onChange={(e) => setCompute('gradientCheckpointing', e.target.checked)}
            />
            Gradient checkpointing
          </label>
          <div className="field-hint">recomputes each layer in backward: less memory, more time</div>
        </div>
        <div className={`field${baseWeightsError ? ' field-invalid' : ''}`}>
          <label htmlFor="field-train.baseWeights">Base weights</label>
          <select
            id="field-train.baseWeights"
            data-testid="field-train.baseWeights"
            value={compute.baseWeights}
            onChange={(e) => setCompute('baseWeights', BASE_WEIGHT_CHOICES.find((c) => c.value === e.target.value)?.value ?? 'f32')}
          >
            {BASE_WEIGHT_CHOICES.map((c) => (
              <option key={c.value} value={c.value}>
                {c.label}
              </option>
            ))}
          </select>
          <FieldNote
            error={baseWeightsError}
            errorTestId="error-train.baseWeights"
            hintTestId="hint-train.baseWeights"
            hint={
              <>
                {baseWeightsHint(compute.baseWeights)}; the memory estimate below follows it.{' '}
                <button type="button" className="link" data-testid="base-weights-lab" onClick={() => usePage.getState().show('quant')}>
                  The Quantization lab's per-layer report
                </button>{' '}
                shows how much each format changes this model.
              </>
            }
          />
        </div>
        {canKeep ? (
          <div className={`field${keepError ? ' field-invalid' : ''}`}>
            <label htmlFor="field-train.baseWeightsKeep">Keep layers at higher precision</label>
            <div className="inline-fields">
              <input
                id="field-train.baseWeightsKeep"
                data-testid="field-train.baseWeightsKeep"
                placeholder="none (e.g. 0, 1, 29)"
                value={compute.keepLayers ?? ''}
                onChange={(e) => setCompute('keepLayers', e.target.value)}
              />
              <select
                aria-label="Kept layers held as"
                data-testid="field-train.baseWeightsKeep.as"
                value={compute.keepAs ?? 'q8_0'}
                onChange={(e) => setCompute('keepAs', KEEP_AS.find((k) => k === e.target.value) ?? 'q8_0')}
              >
                {KEEP_AS.map((k) => (
                  <option key={k} value={k}>
                    as {k}
                  </option>
                ))}
              </select>
            </div>
            <FieldNote
              error={keepError}
              errorTestId="error-train.baseWeightsKeep"
              hintTestId="hint-train.baseWeightsKeep"
              hint="decoder layers (from 0) whose seven linears stay at this precision: the Quantization lab's mixed-precision plan suggests which"
            />
          </div>
        ) : null}
      </div>
    </fieldset>
  );
}
