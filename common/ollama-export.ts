/** "Export for Ollama" (engine/export/ollama-modelfile.ts, services 'adapters.exportOllama'): what was written. */
export interface OllamaExportInfo {
  /** The folder holding Modelfile and adapter.gguf. */
  dir: string;
  modelfile: string;
  adapter: string;
  /** The Modelfile's FROM: an Ollama model name or an absolute path. */
  from: string;
  fromOllama: boolean;
  /** The chat template family written as TEMPLATE / stop, or null (none written). */
  template: 'chatml' | 'llama3' | 'mistral' | null;
  /** The model name `command` creates, and the command itself. */
  name: string;
  command: string;
}
