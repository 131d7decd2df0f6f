// `npm run sample` (and `npm test`): makes sure assets/sample-model and assets/sample-dataset.jsonl exist.
// `--force` regenerates both (the output is deterministic, so a regenerated sample is byte-identical).
import { ensureSample } from '../engine/io/sample.ts';

const force = process.argv.includes('--force');
const { modelDir, datasetPath } = await ensureSample({ force });
console.log(`sample model: ${modelDir}\nsample dataset: ${datasetPath}`);
