import { useMemo } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ReferenceDot, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { FormatReport, MixedPrecisionPlan } from '../../../common/quant-report.ts';
import { labTrainingPlan } from '../../../common/lab-plan.ts';
import { formatBytes } from '../components/format.ts';
import { usePage } from '../stores/page.ts';
import { useStudio } from '../stores/studio.ts';
import { useLab } from './lab-store.ts';
import { formatSci } from './lab-metrics.ts';

const tooltipStyle = { background: 'var(--panel-2)', border: '1px solid var(--border)', borderRadius: 6, fontSize: 12 };
const mib = (b: number): number => b / 2 ** 20;

function Option({ title, size, relErr, snrDb, highlight, testId }: { title: string; size: number; relErr: number; snrDb: number | null; highlight?: boolean; testId: string }) {
  return (
    <div className={`lab-plan-option${highlight ? ' highlight' : ''}`} data-testid={testId} data-size={size} data-rel-err={relErr}>
      <div className="readout-label">{title}</div>
      <div className="readout-value">{formatBytes(size)}</div>
      <div className="muted lab-plan-err">
        rel. err {formatSci(relErr)} · {snrDb === null ? '∞' : `${snrDb.toFixed(1)} dB`}
      </div>
    </div>
  );
}

/**
 * "Train with this plan": the Train form takes the plan's base format and kept layers (common/lab-plan.ts, as
 * `lora-studio train --base-plan` does) for the model the report is about, and the Train page opens on it. A plan
 * training cannot hold (an int8 side) keeps the button off and says why.
 */
function TrainWithPlan({ plan }: { plan: MixedPrecisionPlan }) {
  const modelPath = useLab((s) => s.job?.request.modelPath ?? null);
  const chosen = labTrainingPlan(plan);
  const apply = (): void => {
    if (!chosen.ok) return;
    const studio = useStudio.getState();
    // The report's model, looked at as the Train page does (its summary, the estimate and the checks need it).
    if (modelPath && (studio.modelPath.trim() !== modelPath || !studio.model)) {
      studio.setModelPath(modelPath);
      void studio.inspectModel();
    }
    studio.setCompute('baseWeights', chosen.baseWeights);
    studio.setCompute('keepLayers', chosen.keep ? chosen.keep.layers.join(', ') : '');
    if (chosen.keep) studio.setCompute('keepAs', chosen.keep.as);
    usePage.getState().show('train');
  };
  return (
    <div className="lab-plan-train">
      <button type="button" className="primary-ghost" data-testid="plan-train" disabled={!chosen.ok} onClick={apply}>
        Train with this plan
      </button>
      <span className="muted" data-testid="plan-train-what">
        {chosen.ok
          ? `the Train form's base weights become ${chosen.baseWeights}${chosen.keep ? `, layer${chosen.keep.layers.length === 1 ? '' : 's'} ${chosen.keep.layers.join(', ')} kept as ${chosen.keep.as}` : ''}`
          : chosen.reason}
      </span>
    </div>
  );
}

/** Which layers to keep at a higher precision, what that costs, and the whole size/error trade-off curve. */
export function PlanCard({ plan, baseKey }: { plan: MixedPrecisionPlan | null; baseKey: string }) {
  const curve = useMemo(() => (plan ? plan.curve.map((p) => ({ kept: p.kept, size: mib(p.sizeBytes), relErr: p.relErr })) : []), [plan]);
  // Enough decimals that neighbouring ticks differ, also for a tiny model.
  const span = curve.length > 1 ? Math.abs(curve[curve.length - 1].size - curve[0].size) : 1;
  const decimals = Math.min(4, Math.max(1, Math.ceil(-Math.log10(Math.max(span, 1e-9) / 4)) + 1));
  if (!plan) {
    return (
      <section className="card" data-testid="plan-card">
        <h2>Mixed precision</h2>
        <p className="muted">
          No plan for <strong>{baseKey}</strong>: add a higher-precision format (8-bit or f16) to the run to see which layers are worth keeping at it.
        </p>
      </section>
    );
  }
  return (
    <section className="card" data-testid="plan-card" data-base={plan.base} data-high={plan.high}>
      <h2>
        Mixed precision <span className="count muted">{plan.base} → {plan.high} · ranked by {plan.rankedBy === 'kl' ? 'layer output KL' : 'weight error'}</span>
      </h2>
      <p className="lab-plan-note" data-testid="plan-note">
        {plan.note}
      </p>
      {plan.keepLayers.length > 0 ? (
        <div className="lab-chips" data-testid="plan-keep">
          {plan.keepLayers.map((l) => (
            <span key={l} className="lab-chip">
              layer {l}
            </span>
          ))}
        </div>
      ) : null}
      <TrainWithPlan plan={plan} />
      <div className="lab-plan-options">
        <Option title={`All ${plan.base}`} size={plan.baseline.sizeBytes} relErr={plan.baseline.relErr} snrDb={plan.baseline.snrDb} testId="plan-baseline" />
        <Option title="Suggested" size={plan.sizeBytes} relErr={plan.predicted.relErr} snrDb={plan.predicted.snrDb} highlight testId="plan-suggested" />
        <Option title={`All ${plan.high}`} size={plan.allHigh.sizeBytes} relErr={plan.allHigh.relErr} snrDb={plan.allHigh.snrDb} testId="plan-all-high" />
      </div>
      <div className="chart-head">
        <span className="chart-title">Size vs. predicted error, keeping the top-k layers</span>
      </div>
      <ResponsiveContainer width="100%" height={170}>
        <LineChart data={curve} margin={{ top: 8, right: 16, bottom: 4, left: 0 }}>
          <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
          <XAxis dataKey="size" type="number" domain={['dataMin', 'dataMax']} tickFormatter={(v: number) => v.toFixed(decimals)} stroke="var(--muted)" tick={{ fontSize: 10 }} unit=" MiB" />
          <YAxis dataKey="relErr" tickFormatter={(v: number) => formatSci(v)} stroke="var(--muted)" tick={{ fontSize: 10 }} width={52} />
          <Tooltip
            isAnimationActive={false}
            contentStyle={tooltipStyle}
            labelFormatter={(_l, payload) => {
              const p = payload?.[0]?.payload as { kept: number; size: number } | undefined;
              return p ? `${p.kept} layer${p.kept === 1 ? '' : 's'} in ${plan.high} · ${p.size.toFixed(3)} MiB` : '';
            }}
            formatter={(v) => [formatSci(Number(v)), 'rel. error']}
          />
          <Line dataKey="relErr" stroke="var(--accent)" strokeWidth={2} dot={{ r: 2.5 }} isAnimationActive={false} />
          <ReferenceDot x={mib(plan.sizeBytes)} y={plan.predicted.relErr} r={6} fill="var(--accent-2)" stroke="var(--bg)" />
        </LineChart>
      </ResponsiveContainer>
    </section>
  );
}

/** KL of each decoder layer's output (the residual stream) against the float model, for the formats on screen. */
export function LayerBars({ formats }: { formats: FormatReport[] }) {
  const withLayers = useMemo(() => formats.filter((f) => f.layers), [formats]);
  const data = useMemo(() => {
    const n = withLayers[0]?.layers?.length ?? 0;
    return Array.from({ length: n }, (_, l) => {
      const row: Record<string, number | string> = { layer: `L${l}` };
      for (const f of withLayers) row[f.key] = f.layers?.[l]?.kl ?? 0;
      return row;
    });
  }, [withLayers]);
  if (withLayers.length === 0) return null;
  const colors = ['var(--accent)', 'var(--accent-2)'];
  return (
    <section className="card" data-testid="layer-bars">
      <h2>
        Layer outputs <span className="count muted">histogram KL vs. the float model</span>
      </h2>
      <ResponsiveContainer width="100%" height={160}>
        <BarChart data={data} margin={{ top: 6, right: 12, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="layer" stroke="var(--muted)" tick={{ fontSize: 10 }} interval="preserveStartEnd" />
          <YAxis tickFormatter={(v: number) => formatSci(v)} stroke="var(--muted)" tick={{ fontSize: 10 }} width={52} />
          <Tooltip isAnimationActive={false} contentStyle={tooltipStyle} formatter={(v, name) => [formatSci(Number(v)), String(name)]} cursor={{ fill: 'rgba(255,255,255,0.04)' }} />
          <Legend wrapperStyle={{ fontSize: 11 }} />
          {withLayers.map((f, i) => (
            <Bar key={f.key} dataKey={f.key} fill={colors[i] ?? colors[0]} isAnimationActive={false} />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </section>
  );
}
