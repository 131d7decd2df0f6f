/** The report's JSON shapes live in common/ so the renderer can use them too; the engine keeps importing them here. */
export type * from '../../common/quant-report.ts';
