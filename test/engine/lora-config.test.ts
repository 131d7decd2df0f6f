/**
 * The engine refuses a LoRA config with the run config's own schema (common/protocol.ts LoraSettingsSchema): the same
 * values are refused by the form, `lora-studio train` and the engine, each message naming the field and the value.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoraSettingsSchema } from '../../common/protocol.ts';
import { validateLoraConfig } from '../../engine/model/lora.ts';
import type { LoraConfig } from '../../engine/model/types.ts';

const good: LoraConfig = { r: 8, alpha: 16, dropout: 0.05, targets: ['q_proj', 'v_proj'], rslora: false };

test('a good config passes; each bad field is refused by name, with the value found', () => {
  validateLoraConfig(good);
  const bad = (patch: Partial<LoraConfig>, want: RegExp): void => assert.throws(() => validateLoraConfig({ ...good, ...patch } as LoraConfig), want);
  bad({ r: 0 }, /^Error: lora\.r: rank must be at least 1 \(got 0\)$/);
  bad({ r: 2.5 }, /^Error: lora\.r: rank must be a whole number \(got 2\.5\)$/);
  bad({ r: 4096 }, /^Error: lora\.r: rank must be at most 1024 \(got 4096\)$/);
  bad({ alpha: -1 }, /^Error: lora\.alpha: alpha must be greater than 0 \(got -1\)$/);
  bad({ dropout: 1 }, /^Error: lora\.dropout: dropout must be below 1 \(got 1\)$/);
  bad({ targets: [] }, /^Error: lora\.targets: choose at least one target module \(got \[\]\)$/);
  bad({ targets: ['q_proj', 'lm_head' as 'q_proj'] }, /^Error: lora\.targets\.1: .* \(got "lm_head"\)$/);
  bad({ targets: ['q_proj', 'q_proj'] }, /^Error: lora\.targets: a target module is listed twice \(got \["q_proj","q_proj"\]\)$/);
});

test('the schema the form and run.json use refuses the same duplicate', () => {
  const r = LoraSettingsSchema.safeParse({ ...good, targets: ['k_proj', 'k_proj'] });
  assert.equal(r.success, false);
  assert.equal(r.error?.issues[0]?.message, 'a target module is listed twice');
});
