/**
 * The seven linear layers of a llama-family block, by their Hugging Face / PEFT module names, in the order the engine
 * walks them (attention q, k, v, o, then the MLP's gate, up, down) — the one list every part of the studio uses: the
 * run config's targets, the engine's layer walks, the quantization lab's matrices and its labels.
 */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** The quantization lab's short matrix names (the ModelWeights fields: layer.q … layer.down), in the same order. */
export const MATRIX_NAMES = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type MatrixName = (typeof MATRIX_NAMES)[number];

/** Short matrix name → module name. */
export const MATRIX_TARGET: Readonly<Record<MatrixName, LoraTarget>> = Object.fromEntries(MATRIX_NAMES.map((m, i) => [m, LORA_TARGETS[i]])) as Record<MatrixName, LoraTarget>;
