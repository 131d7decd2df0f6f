/**
 * What the lab's heatmap can colour by, and the colour scale: every metric is turned into "badness" (higher = worse)
 * so one palette reads the same way for errors, SNR and cosine. Errors span decades, so they are drawn on a log scale.
 */
import type { FormatReport, QuantCell } from '../../../common/quant-report.ts';
import { MATRIX_TARGET } from '../../../common/lora-targets.ts';

export type LabMetric = 'relErr' | 'snrDb' | 'mse' | 'maxAbsErr' | 'kl' | 'cosine';

export interface MetricInfo {
  id: LabMetric;
  label: string;
  /** Needs calibration text (behaviour metrics). */
  calibration: boolean;
  hint: string;
}

export const LAB_METRICS: readonly MetricInfo[] = [
  { id: 'relErr', label: 'Rel. error', calibration: false, hint: '‖W − Ŵ‖ / ‖W‖ (lower is better)' },
  { id: 'snrDb', label: 'SNR', calibration: false, hint: '10·log10(ΣW² / Σ(W − Ŵ)²) in dB (higher is better)' },
  { id: 'mse', label: 'MSE', calibration: false, hint: 'mean of (W − Ŵ)² (lower is better)' },
  { id: 'maxAbsErr', label: 'Max |err|', calibration: false, hint: 'largest |W − Ŵ| (lower is better)' },
  { id: 'kl', label: 'KL', calibration: true, hint: 'KL of this linear’s output histogram vs the float model on the calibration text (lower is better)' },
  { id: 'cosine', label: 'Cosine', calibration: true, hint: 'cosine similarity of this linear’s output vs the float model (higher is better)' },
];

export const metricInfo = (id: LabMetric): MetricInfo => LAB_METRICS.find((m) => m.id === id) ?? LAB_METRICS[0];

/** The metric's value for a cell; null = not measured (no calibration). SNR null means exact: +∞. */
export function cellValue(cell: QuantCell, metric: LabMetric): number | null {
  switch (metric) {
    case 'relErr':
      return cell.relErr;
    case 'snrDb':
      return cell.snrDb ?? Number.POSITIVE_INFINITY;
    case 'mse':
      return cell.mse;
    case 'maxAbsErr':
      return cell.maxAbsErr;
    case 'kl':
      return cell.kl;
    case 'cosine':
      return cell.cosine;
  }
}

/** Higher = worse, on the axis the colours are spread over (log10 for errors, dB for SNR). */
function badness(v: number, metric: LabMetric): number | null {
  switch (metric) {
    case 'snrDb':
      return Number.isFinite(v) ? -v : null;
    case 'cosine': {
      const d = 1 - v;
      return d > 0 ? Math.log10(d) : null;
    }
    default:
      return v > 0 ? Math.log10(v) : null;
  }
}

export function formatMetric(v: number | null, metric: LabMetric): string {
  if (v === null) return '—';
  if (metric === 'snrDb') return Number.isFinite(v) ? `${v.toFixed(1)} dB` : '∞';
  if (metric === 'cosine') return v >= 0.9999 ? v.toFixed(6) : v.toFixed(4);
  return formatSci(v);
}

export function formatSci(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 0.01 && a < 1000 ? v.toPrecision(3) : v.toExponential(2);
}

// Dark teal (good) → green → amber → red (bad): readable on the dark panel and for most colour-vision deficiencies.
const STOPS: [number, number, number][] = [
  [22, 50, 79],
  [31, 110, 139],
  [72, 170, 120],
  [226, 196, 74],
  [232, 119, 56],
  [200, 40, 60],
];

function paletteAt(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const c = STOPS[i].map((a, k) => Math.round(a + (STOPS[i + 1][k] - a) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** CSS gradient of the palette, for the legend. */
export const PALETTE_GRADIENT = `linear-gradient(90deg, ${STOPS.map((_, i) => paletteAt(i / (STOPS.length - 1))).join(', ')})`;

export interface ColorScale {
  metric: LabMetric;
  /** Badness range the palette spans; null when no cell has a value. */
  lo: number | null;
  hi: number | null;
  /** Metric values at the ends of the legend (best, worst). */
  best: number | null;
  worst: number | null;
  color(value: number | null): string;
}

const NO_DATA = '#2a303b';
const EXACT = 'rgb(16, 36, 58)';

/** One scale over every cell of the given formats, so side-by-side heatmaps compare by colour. */
export function colorScale(formats: readonly FormatReport[], metric: LabMetric): ColorScale {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  let best: number | null = null;
  let worst: number | null = null;
  for (const f of formats) {
    for (const row of f.cells) {
      for (const cell of row) {
        const v = cellValue(cell, metric);
        if (v === null) continue;
        const b = badness(v, metric);
        if (b === null) continue;
        if (b < lo) {
          lo = b;
          best = v;
        }
        if (b > hi) {
          hi = b;
          worst = v;
        }
      }
    }
  }
  const has = Number.isFinite(lo) && Number.isFinite(hi);
  return {
    metric,
    lo: has ? lo : null,
    hi: has ? hi : null,
    best,
    worst,
    color(value) {
      if (value === null) return NO_DATA;
      const b = badness(value, metric);
      // Exact cells (zero error, infinite SNR, cosine 1) get the "best" end, a shade darker.
      if (b === null) return EXACT;
      if (!has) return paletteAt(0.5);
      return paletteAt(hi > lo ? (b - lo) / (hi - lo) : 0.5);
    },
  };
}

/** A matrix's module name (q → q_proj), from the one list in common/lora-targets.ts. */
export const MATRIX_LABELS: Readonly<Record<string, string>> = MATRIX_TARGET;
