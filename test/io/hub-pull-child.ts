/**
 * A second process pulling from the Hub for test/io/hf-hub-download.test.ts (the cross-process lock): pulls argv[2]
 * with this process's environment (HF_ENDPOINT, HF_HUB_CACHE, HF_HOME) and prints the result as one JSON line.
 */
import { pullFromHub } from '../../engine/io/hf-hub-download.ts';

const repo = process.argv[2];
if (!repo) throw new Error('usage: hub-pull-child.ts <org/name>');
const r = await pullFromHub({ repo });
process.stdout.write(`${JSON.stringify(r)}\n`);
