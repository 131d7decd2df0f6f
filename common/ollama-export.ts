/** "Export for Ollama" (engine/export/ollama-modelfile.ts, services 'adapters.exportOllama'): what was written. */
import { z } from 'zod';

export const OllamaExportInfoSchema = z.object({
  /** The folder holding Modelfile and adapter.gguf. */
  dir: z.string(),
  modelfile: z.string(),
  adapter: z.string(),
  /** The Modelfile's FROM: an Ollama model name or an absolute path. */
  from: z.string(),
  fromOllama: z.boolean(),
  /** The chat template family written as TEMPLATE / stop, or null (none written). */
  template: z.enum(['chatml', 'llama3', 'mistral']).nullable(),
  /** The model name `command` creates, and the command itself. */
  name: z.string(),
  command: z.string(),
});
export type OllamaExportInfo = z.output<typeof OllamaExportInfoSchema>;
