/**
 * `node --import tsx bench/shape-config.ts SHAPE [OUT.json]`: the config.json of a benchmark shape, so that
 * bench/peft_reference.py builds exactly the model bench/train-step.ts builds.
 */
import { writeFileSync } from 'node:fs';
import { SHAPES } from './shapes.ts';

const [name, out] = process.argv.slice(2);
if (!name || !(name in SHAPES)) {
  console.error(`usage: shape-config.ts SHAPE [OUT.json]; SHAPE is one of ${Object.keys(SHAPES).join(', ')}${name ? ` (got ${name})` : ''}`);
  process.exit(2);
}
const json = JSON.stringify(SHAPES[name as keyof typeof SHAPES].hf, null, 2) + '\n';
if (out) writeFileSync(out, json);
else process.stdout.write(json);
