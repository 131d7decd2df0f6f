/**
 * The independent random streams a run draws from its one seed (splitmix inside Rng decorrelates neighbouring seeds):
 * the LoRA initialisation, the data order and the dropout masks. Shared by the trainer and by what must reproduce it
 * elsewhere (the exported Accelerate bundle carries the same initial adapter, batch order and dropout seeds).
 */
export const INIT_STREAM = 0;
export const DATA_STREAM = 0x5eed01;
export const DROPOUT_STREAM = 0x5eed02;
