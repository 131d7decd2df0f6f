/**
 * Model stores laid out as their tools write them, for discovery tests: Ollama's blobs/sha256-… and manifests (as
 * `ollama pull` writes them) and huggingface_hub's models--org--name/{blobs,refs,snapshots} with symlinked snapshots.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OLLAMA_MODEL_LAYER } from '../../engine/io/model-discovery.ts';

/** The commit every fake HF snapshot is at. */
export const HF_REV = 'e2c7a6a3b1f0d9c8b7a6e5d4c3b2a1f0e9d8c7b6';

export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A big real file into a store: a hard link when the file system allows it (as cheap as Ollama's own), else a copy. */
export function placeFile(src: string, dst: string): void {
  try {
    linkSync(src, dst);
  } catch {
    copyFileSync(src, dst);
  }
}

/** Writes `content` as an Ollama blob and returns its layer descriptor. */
function ollamaBlob(root: string, mediaType: string, content: string): { mediaType: string; digest: string; size: number } {
  const hex = createHash('sha256').update(content).digest('hex');
  writeFileSync(join(root, 'blobs', `sha256-${hex}`), content);
  return { mediaType, digest: `sha256:${hex}`, size: Buffer.byteLength(content) };
}

/** Puts `gguf` into the Ollama store at `root` as its blob and returns the digest ("sha256:…"). */
export function ollamaModelBlob(root: string, gguf: string): string {
  mkdirSync(join(root, 'blobs'), { recursive: true });
  const digest = `sha256:${sha256(gguf)}`;
  placeFile(gguf, join(root, 'blobs', digest.replace(':', '-')));
  return digest;
}

/** A manifest at manifests/`rel` (registry/namespace/model/tag) whose model layer is `modelDigest`, with the config,
 * template and params blobs Ollama writes beside it. */
export function ollamaManifest(root: string, rel: string, modelDigest: string, modelSize: number): void {
  mkdirSync(join(root, 'blobs'), { recursive: true });
  const config = ollamaBlob(root, 'application/vnd.docker.container.image.v1+json', JSON.stringify({ model_format: 'gguf', model_family: 'llama', model_families: ['llama'], model_type: '134.52M', file_type: 'Q4_1', architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [modelDigest] } }));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config,
    layers: [
      { mediaType: OLLAMA_MODEL_LAYER, digest: modelDigest, size: modelSize },
      ollamaBlob(root, 'application/vnd.ollama.image.template', '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n'),
      ollamaBlob(root, 'application/vnd.ollama.image.params', JSON.stringify({ stop: ['<|im_start|>', '<|im_end|>'] })),
    ],
  };
  const file = join(root, 'manifests', rel);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, JSON.stringify(manifest));
}

/** The sample model as huggingface_hub caches it: blobs named by content hash, the snapshot's files symlinks to them. */
export function hfRepo(hub: string, repoId: string, files: Record<string, string>): string {
  const repo = join(hub, `models--${repoId.replace('/', '--')}`);
  const snap = join(repo, 'snapshots', HF_REV);
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(snap, { recursive: true });
  mkdirSync(join(repo, 'refs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), HF_REV);
  for (const [name, src] of Object.entries(files)) {
    const hash = sha256(src);
    placeFile(src, join(repo, 'blobs', hash));
    symlinkSync(join('..', '..', 'blobs', hash), join(snap, name));
  }
  return snap;
}

