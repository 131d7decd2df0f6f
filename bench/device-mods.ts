/**
 * `node --import tsx bench/device-mods.ts > list`: the node_modules files that the benchmarks need at run time, one
 * path a line (relative to the repo root), for bench/prepare-device.sh to pack. The GPU machine has no npm and the
 * whole node_modules (≈ 530 MB) is far over what may travel there.
 *
 * What is needed is found, not listed by hand: esbuild walks the benchmark entry points with every package left
 * external, the packages they import are closed over their dependencies, and tsx (the loader) is added. Left out:
 * other platforms' native builds of webgpu, source maps, type declarations and docs.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const ENTRIES = ['bench/bench.ts', 'bench/train-step.ts', 'bench/webgpu-bench.ts', 'bench/shape-config.ts'];
/** Loaded by `node --import`, so no source file imports them. */
const LOADERS = ['tsx'];
const PLATFORM_DIR = `${process.platform}-${process.arch}`;

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

/** Where `name` resolves from a package folder: its own node_modules first, then each one above it. */
function resolvePackage(name: string, fromDir: string): string | null {
  for (let d = fromDir; ; d = dirname(d)) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (d === root || dirname(d) === d) return null;
  }
}

function skipped(rel: string): boolean {
  if (/\.(map|d\.ts|d\.mts|d\.cts|md|markdown)$/i.test(rel)) return true;
  // webgpu ships a Dawn build per platform; only this one is loaded.
  const m = /(^|\/)node_modules\/webgpu\/dist\/([^/]+)\//.exec(rel);
  return m !== null && m[2] !== PLATFORM_DIR;
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (st.isFile()) {
      const rel = relative(root, p);
      if (!skipped(rel)) out.push(rel);
    }
  }
}

const result = await build({
  entryPoints: ENTRIES.filter((e) => existsSync(join(root, e))).map((e) => join(root, e)),
  bundle: true,
  platform: 'node',
  format: 'esm',
  packages: 'external',
  metafile: true,
  write: false,
  outdir: join(root, '.devmods-unused'),
  logLevel: 'silent',
});

const direct = new Set<string>(LOADERS);
for (const input of Object.values(result.metafile.inputs)) {
  for (const imp of input.imports) {
    if (imp.external && !isBuiltin(imp.path) && !imp.path.startsWith('.') && !imp.path.startsWith('/')) direct.add(packageName(imp.path));
  }
}

// Close over dependencies (optional ones only when installed, as npm does).
const dirs = new Map<string, string>();
const queue: [string, string][] = [...direct].map((n) => [n, root]);
while (queue.length > 0) {
  const [name, from] = queue.shift() as [string, string];
  const dir = resolvePackage(name, from);
  if (!dir) {
    if (direct.has(name)) throw new Error(`device-mods: ${name} is imported by the benchmarks but not installed in node_modules`);
    continue;
  }
  if (dirs.has(dir)) continue;
  dirs.set(dir, name);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
  for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
    const deps = pkg[field];
    if (deps && typeof deps === 'object') for (const dep of Object.keys(deps)) queue.push([dep, dir]);
  }
}

const files: string[] = [];
const sizes: string[] = [];
for (const [dir, name] of [...dirs].sort((a, b) => a[0].localeCompare(b[0]))) {
  const before = files.length;
  // A nested node_modules is walked through its own packages' entries, so keep it out of the parent's walk.
  const own: string[] = [];
  walk(dir, own);
  const nested = join(relative(root, dir), 'node_modules') + '/';
  files.push(...own.filter((f) => !f.startsWith(nested)));
  const bytes = files.slice(before).reduce((a, f) => a + statSync(join(root, f)).size, 0);
  sizes.push(`${(bytes / 2 ** 20).toFixed(1).padStart(7)} MiB  ${name}`);
}
process.stdout.write(files.join('\n') + '\n');
console.error(sizes.join('\n'));
console.error(`device-mods: ${dirs.size} packages, ${files.length} files (direct: ${[...direct].sort().join(', ')})`);
