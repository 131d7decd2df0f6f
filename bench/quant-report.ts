/** Time to produce a full weight-metric quantization report for the SmolLM-135M shape (random weights). */
import { benchWeightReport } from '../engine/quant/bench.ts';

const row = await benchWeightReport('smollm-135m');
console.log(JSON.stringify({ bench: 'quant-report', ...row, peakRssMiB: process.resourceUsage().maxRSS / 1024 }));
