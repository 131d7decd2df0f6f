/**
 * One record as a reader found it: a parsed value, or the reason it could not be parsed. Readers never throw for a bad
 * record, so the caller's bad-record policy (fail or skip) decides; they throw only when the whole file is unusable.
 * `line` is the 1-based line where the record starts (the row number for Parquet).
 */
export type SourceRecord = { line: number; value: unknown; error?: undefined } | { line: number; error: string; value?: undefined };
