// errorDetails: what an engine 'error' event carries of a thrown value — its place (file, line, field) and the errno
// code of a failed file operation, its own or its cause's (the host tells a deleted run folder by ENOENT, not words).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorDetails } from '../../engine/engine-error.ts';

test('errorDetails keeps the place and the errno code, its own or its cause\'s', () => {
  const own = Object.assign(new Error('gone'), { code: 'ENOENT', file: '/r/x', line: 3, field: 'datasetPath' });
  assert.deepEqual(errorDetails(own), { message: 'gone', file: '/r/x', line: 3, field: 'datasetPath', code: 'ENOENT' });
  const wrapped = Object.assign(new Error('cannot write the checkpoint /r/c: the folder disappeared (ENOENT)', { cause: Object.assign(new Error('raw'), { code: 'ENOENT' }) }), { file: '/r/c' });
  assert.deepEqual(errorDetails(wrapped), { message: wrapped.message, file: '/r/c', code: 'ENOENT' });
  // Codes that are not errno names (zod's, sqlite's) are not passed as one.
  assert.deepEqual(errorDetails(Object.assign(new Error('x'), { code: 'invalid_type' })), { message: 'x' });
  assert.deepEqual(errorDetails('plain'), { message: 'plain' });
});
