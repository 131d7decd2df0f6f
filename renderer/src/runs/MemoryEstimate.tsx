import { useEffect, useMemo, useRef, useState } from 'react';
import type { StudioErrorInfo, StudioResult } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { formatBytes } from '../components/format.ts';
import { useStudio } from '../stores/studio.ts';
import './runs.css';
import { estimateRequest, memoryFit, memorySegments, segmentPercents } from './memory-view.ts';

/** Typing pauses this long before the estimate is asked for again. */
const DEBOUNCE_MS = 300;

type Estimate = StudioResult<'runs.estimateMemory'>;

/** Peak memory of the run the form describes, before it starts: a stacked bar of its parts and the total. */
export function MemoryEstimate() {
  const client = useStudio((s) => s.client);
  const form = useStudio((s) => s.form);
  const modelPath = useStudio((s) => s.model?.path ?? '');
  const [resolved, setResolved] = useState<'cpu' | 'webgpu' | null>(null);
  const [result, setResult] = useState<Estimate | null>(null);
  const [error, setError] = useState<StudioErrorInfo | null>(null);
  const seq = useRef(0);

  // 'auto' is estimated for the backend it resolves to ('backends.probe' is answered from the services' cache).
  const wantsProbe = form.compute.backend === 'auto';
  useEffect(() => {
    if (!client || !wantsProbe || resolved) return;
    let live = true;
    client.request('backends.probe', {}).then(
      (r) => live && setResolved(r.auto),
      () => live && setResolved('cpu'),
    );
    return () => {
      live = false;
    };
  }, [client, wantsProbe, resolved]);

  const backend = form.compute.backend === 'auto' ? (resolved ?? undefined) : form.compute.backend;
  const request = useMemo(() => estimateRequest(form, modelPath, backend), [form, modelPath, backend]);
  const key = request.ok ? JSON.stringify(request.params) : null;

  useEffect(() => {
    if (!client || !request.ok) return;
    const mine = ++seq.current;
    const timer = setTimeout(() => {
      client.request('runs.estimateMemory', request.params).then(
        (r) => {
          if (mine !== seq.current) return;
          setResult(r);
          setError(null);
        },
        (e: unknown) => {
          if (mine !== seq.current) return;
          setError(errorInfo(e));
        },
      );
    }, DEBOUNCE_MS);
    return () => clearTimeout(timer);
    // `key` stands for the request's content: a new form object with the same sizing asks nothing new.
  }, [client, key]);

  if (!request.ok) {
    return (
      <div className="memory-estimate memory-estimate-empty" data-testid="memory-estimate" data-state="none">
        <span className="label">Memory</span> <span className="muted">{request.message}</span>
      </div>
    );
  }
  if (!result) {
    return (
      <div className="memory-estimate" data-testid="memory-estimate" data-state={error ? 'error' : 'loading'}>
        <span className="label">Memory</span> <span className={error ? 'field-error' : 'muted'}>{error ? `no estimate: ${error.message}` : 'estimating…'}</span>
      </div>
    );
  }

  const e = result.estimate;
  const segments = memorySegments(e);
  const percents = segmentPercents(segments);
  const checkpointing = form.compute.gradientCheckpointing;
  const fit = e.backend === 'cpu' ? memoryFit(e.total, result.systemMemoryBytes, result.freeMemoryBytes) : 'ok';
  return (
    <div className={`memory-estimate${error ? ' stale' : ''}`} data-testid="memory-estimate" data-state="ready" data-total={e.total}>
      <div className="memory-head">
        <span className="label">Memory at the peak</span>
        <span className="memory-total" data-testid="memory-total">
          ≈ {formatBytes(e.total)}
        </span>
        <span className="muted">
          on {e.backend}
          {e.backend === 'cpu' ? ` · ${formatBytes(result.freeMemoryBytes)} free of ${formatBytes(result.systemMemoryBytes)}` : ''}
        </span>
      </div>
      <div className="memory-bar" role="img" aria-label={segments.map((s) => `${s.label} ${formatBytes(s.bytes)}`).join(', ')}>
        {segments.map((s, i) => (
          <div key={s.key} className="memory-segment" data-testid={`memory-segment-${s.key}`} data-bytes={s.bytes} title={`${s.label}: ${formatBytes(s.bytes)}`} style={{ width: `${percents[i]}%`, background: s.color }} />
        ))}
      </div>
      <div className="memory-legend">
        {segments.map((s) => (
          <span key={s.key} className="memory-legend-item">
            <span className="swatch" style={{ background: s.color }} aria-hidden="true" />
            {s.label} {formatBytes(s.bytes)}
          </span>
        ))}
      </div>
      <div className="memory-compare muted" data-testid="memory-checkpointing">
        <span className={checkpointing ? '' : 'memory-chosen'}>without checkpointing {formatBytes(e.totalWithoutCheckpointing)}</span>
        {' · '}
        <span className={checkpointing ? 'memory-chosen' : ''}>with {formatBytes(e.totalWithCheckpointing)}</span>
        {' · '}
        logits chunk {formatBytes(e.logitsChunk)} (in activations) · {e.tokensPerMicroBatch.toLocaleString('en-US')} tokens per micro-batch
      </div>
      {fit !== 'ok' ? (
        <div className={`note ${fit === 'over' ? 'note-error' : 'note-warn'}`} data-testid="memory-fit">
          {fit === 'over'
            ? `more than this machine's ${formatBytes(result.systemMemoryBytes)}: lower the batch size or sequence length, or turn on gradient checkpointing`
            : `more than the ${formatBytes(result.freeMemoryBytes)} free right now`}
        </div>
      ) : null}
      {error ? <div className="field-error">could not refresh: {error.message}</div> : null}
    </div>
  );
}
