/** Runs any kind of thread-pool part (the pool workers' dispatcher): matrix products and attention. */
import { runAttentionPart } from './attention-split.ts';
import { runMatmulPart } from './matmul.ts';
import type { PoolPart } from './thread-pool.ts';

export function runPoolPart(part: PoolPart): void {
  switch (part.op) {
    case 'attnF':
    case 'attnB':
      runAttentionPart(part);
      return;
    case 'ABt':
    case 'AB':
      runMatmulPart(part);
      return;
  }
}
