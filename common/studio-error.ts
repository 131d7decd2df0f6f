/**
 * A problem the UI shows next to the thing it is about: the shape of every refusal (the reply envelope's `error`) and
 * of the errors events carry. Its own module so common/models-pull.ts and the event schemas can use it without a
 * runtime import of common/protocol.ts.
 */
import { z } from 'zod';
import { FieldErrorSchema } from './run-config.ts';

export const StudioErrorInfoSchema = z.object({
  message: z.string(),
  /** Field of the request the problem is about (e.g. `modelPath`, `lora.r`). */
  field: z.string().optional(),
  /** File and line the problem is in, when it comes from a file. */
  file: z.string().optional(),
  line: z.number().optional(),
  fieldErrors: z.array(FieldErrorSchema).optional(),
});
export type StudioErrorInfo = z.infer<typeof StudioErrorInfoSchema>;
