#!/usr/bin/env bash
# The GPU machine's one prepared benchmark: the studio's webgpu backend against PyTorch + transformers + PEFT on
# the same shapes, side by side, written to $OUT (results.md, results.json, device.log) within 8 minutes.
#
# Before: `bash bench/prepare-device.sh` here (fills .devnode, .devmods, .gl). Then the device run:
#   command: bash bench/device.sh        carry: [".devnode", ".devmods", ".gl"]        timeout_s: 540
#
# Every case runs under its own timeout, cut further to what is left of the budget; a failure, a timeout or a case
# left out for time is a row of the table, never the end of the script.
#
# usage: bash bench/device.sh [--cpu-smoke] [--budget SECONDS] [--precision fp16|fp32] [--no-checkpointing]
#                             [--cases "SHAPE:SEQ:BATCH:STEPS ..."] [--carried-node]
#   --cpu-smoke     a dry run anywhere: the tiny shape, fp32, the cpu backend against PEFT on the cpu (no GPU, no GL)
#   --carried-node  use .devnode's node even when one is on the PATH (to test the carried one)
# Environment: OUT (default /tmp/devout), PYTHON (default python3: the one with torch there).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-/tmp/devout}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
LOG="$OUT/device.log"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
START=$(date +%s)

SMOKE=0
BUDGET=450
PRECISION=fp16
CKPT=1
CASES=""
CARRIED=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-smoke) SMOKE=1; shift ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --precision) PRECISION="$2"; shift 2 ;;
    --no-checkpointing) CKPT=0; shift ;;
    --cases) CASES="$2"; shift 2 ;;
    --carried-node) CARRIED=1; shift ;;
    *) echo "device.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ "$SMOKE" = 1 ]; then
  [ -n "$CASES" ] || CASES="tiny:128:4:3"
  PRECISION=fp32
  STUDIO_BACKEND=cpu
  PEFT_DEVICE=cpu
else
  # Small first (a quick sign of life), then the 7B shape the studio is judged on, then 1B if time is left.
  [ -n "$CASES" ] || CASES="smollm-135m:2048:1:4 llama-7b:2048:1:3 llama-1b:2048:1:4"
  STUDIO_BACKEND=webgpu
  PEFT_DEVICE=cuda
fi
RESERVE=15 # seconds kept for the table at the end

elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET - $(elapsed) - RESERVE)); }
say() { echo "[device.sh +$(elapsed)s] $*"; }

TMPD="$(mktemp -d)"
RECORDS="$TMPD/records.jsonl"
: >"$RECORDS"
ENVJSON="$TMPD/env.json"
echo '{}' >"$ENVJSON"
env_set() { "$PY" -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d[sys.argv[2]]=sys.argv[3]; json.dump(d, open(p, "w"))' "$ENVJSON" "$1" "$2"; }

say "mode: $([ "$SMOKE" = 1 ] && echo cpu-smoke || echo gpu), budget ${BUDGET}s, precision $PRECISION, checkpointing $CKPT, cases: $CASES"
env_set mode "$([ "$SMOKE" = 1 ] && echo cpu-smoke || echo gpu)"

# --- Vulkan loader and NVIDIA driver -------------------------------------------------------------------------------
if [ "$SMOKE" = 0 ]; then
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
    if ls .gl/*.deb >/dev/null 2>&1; then
      for f in .gl/*.deb; do dpkg -x "$f" / || say "dpkg -x $f failed"; done
      ldconfig
      say "Vulkan loader unpacked from .gl"
    else
      say "no libvulkan.so.1 and no .gl/*.deb carried: the webgpu side will find no adapter"
    fi
  fi
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
  say "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
  gpu="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
  say "nvidia-smi: $gpu"
  env_set nvidiaSmi "$gpu"
fi

# --- node and the node_modules the bench needs --------------------------------------------------------------------
# xz may be missing there; Python's lzma and tarfile then do the same.
unxz_to() { xz -dc "$1" >"$2" 2>/dev/null || "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; }
untar_xz() { tar -xJf "$1" 2>/dev/null || "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(".")' "$1"; }

NODE_OK=0
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$CARRIED" = 0 ] && command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge 20 ]; then
  NODE_OK=1
  say "node on the PATH: $(command -v node) $(node --version)"
elif [ -f .devnode/node.xz ]; then
  mkdir -p "$TMPD/bin"
  if unxz_to .devnode/node.xz "$TMPD/bin/node" && chmod +x "$TMPD/bin/node" && "$TMPD/bin/node" --version >/dev/null; then
    export PATH="$TMPD/bin:$PATH"
    NODE_OK=1
    say "node carried in .devnode: $(node --version)"
  else
    say "the carried node does not run here"
  fi
else
  say "no node on the PATH and none carried in .devnode (run bench/prepare-device.sh first)"
fi
if [ "$NODE_OK" = 1 ] && { [ ! -f node_modules/tsx/package.json ] || [ ! -f node_modules/webgpu/package.json ]; }; then
  if [ -f .devmods/node_modules.tar.xz ]; then
    untar_xz .devmods/node_modules.tar.xz && say "node_modules unpacked from .devmods ($(du -sh node_modules | cut -f1))"
  else
    say "no node_modules and no .devmods/node_modules.tar.xz carried"
  fi
fi
if [ "$NODE_OK" = 1 ]; then
  env_set node "$(node --version)"
  if ! timeout 30 node --import tsx -e '' 2>"$TMPD/tsx.err"; then
    say "node --import tsx fails: $(tail -3 "$TMPD/tsx.err")"
    NODE_OK=0
  fi
fi

# --- what the GPU is, to both sides -------------------------------------------------------------------------------
PEAK=""
if [ "$SMOKE" = 0 ]; then
  peak_json="$(timeout 60 "$PY" bench/peft_reference.py --print-peak --precision "$PRECISION" --device cuda 2>&1 | tail -1)"
  say "peak: $peak_json"
  PEAK="$("$PY" -c 'import json,sys; v=json.loads(sys.argv[1]).get("peakTflops"); print("" if v is None else v)' "$peak_json" 2>/dev/null)"
  env_set peak "$peak_json"
fi
STUDIO_SKIP=""
if [ "$NODE_OK" = 0 ]; then
  STUDIO_SKIP="no working node with tsx on this machine"
elif [ "$STUDIO_BACKEND" = webgpu ]; then
  probe="$(timeout 60 node --import tsx -e "import('./engine/backend/webgpu/device.ts').then(async (m) => console.log(JSON.stringify(await m.probeAdapter())))" 2>"$TMPD/probe.err" | tail -1)"
  say "webgpu adapter: ${probe:-none} $(tail -2 "$TMPD/probe.err" | tr '\n' ' ')"
  env_set adapter "${probe:-probe failed: $(tail -1 "$TMPD/probe.err")}"
  case "$probe" in
    *'"available":true'*)
      case "$probe" in *llvmpipe* | *SwiftShader* | *lavapipe*) STUDIO_SKIP="only a software adapter: $probe" ;; esac ;;
    *) STUDIO_SKIP="no WebGPU adapter: ${probe:-$(tail -1 "$TMPD/probe.err")}" ;;
  esac
fi
env_set python "$("$PY" -c 'import sys, torch, transformers, peft; print(sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)' 2>&1 | tail -1)"

# --- the cases ----------------------------------------------------------------------------------------------------
# record SIDE SHAPE SEQ BATCH RC SECONDS STDOUT_FILE STDERR_FILE [NOTE]
record() {
  "$PY" - "$@" >>"$RECORDS" <<'EOF'
import json, sys
side, shape, seq, batch, rc, secs, out, err = sys.argv[1:9]
note = sys.argv[9] if len(sys.argv) > 9 else ""
row = None
try:
    lines = [l for l in open(out).read().splitlines() if l.startswith("{")]
    row = json.loads(lines[-1]) if lines else None
except (OSError, ValueError):
    pass
try:
    tail = open(err).read().strip().splitlines()[-3:]
except OSError:
    tail = []
rc = int(rc)
if not note and rc != 0:
    note = f"timed out after {secs}s" if rc in (124, 137) else f"exit {rc}: " + " | ".join(tail)[-300:]
elif not note and row is None:
    note = "printed no JSON row: " + " | ".join(tail)[-300:]
print(json.dumps({"side": side, "shape": shape, "seq": int(seq), "batch": int(batch), "rc": rc, "seconds": int(secs),
                  "row": row if rc == 0 else None, "note": note}))
EOF
}

# side SIDE SHAPE SEQ BATCH CAP -- COMMAND...
side() {
  local s=$1 shape=$2 seq=$3 batch=$4 cap=$5
  shift 6
  local budget
  budget=$(left)
  if [ "$budget" -lt 20 ]; then
    say "$s $shape: left out, ${budget}s of budget left"
    record "$s" "$shape" "$seq" "$batch" 0 0 /dev/null /dev/null "left out: out of time"
    return
  fi
  local t=$((cap < budget ? cap : budget))
  local o="$TMPD/$s-$shape.out" e="$TMPD/$s-$shape.err" t0
  t0=$(date +%s)
  say "$s $shape seq $seq batch $batch: up to ${t}s"
  timeout -k 5 "$t" "$@" >"$o" 2>"$e" </dev/null
  local rc=$?
  # The last lines of each run go to the log; the whole stderr of a failing run is rarely more useful.
  tail -n 15 "$e" | sed "s/^/    [$s $shape] /"
  tail -n 1 "$o" | cut -c1-400 | sed "s/^/    [$s $shape] /"
  record "$s" "$shape" "$seq" "$batch" "$rc" $(($(date +%s) - t0)) "$o" "$e"
}

CK_FLAG=()
[ "$CKPT" = 1 ] && CK_FLAG=(--checkpointing)
PEAK_FLAG=()
[ -n "$PEAK" ] && PEAK_FLAG=(--peak-tflops "$PEAK")
for c in $CASES; do
  IFS=: read -r shape seq batch steps <<<"$c"
  case "$shape" in
    llama-7b) cap_peft=110; cap_studio=170 ;;
    llama-1b) cap_peft=80; cap_studio=110 ;;
    *) cap_peft=60; cap_studio=70 ;;
  esac
  # PEFT first: it is the yardstick, and a studio failure that wedges the GPU must not cost it.
  cfg=()
  [ -f ".devnode/shapes/$shape.json" ] && [ "$NODE_OK" = 0 ] && cfg=(--config ".devnode/shapes/$shape.json")
  PYTHONUNBUFFERED=1 side peft "$shape" "$seq" "$batch" "$cap_peft" -- \
    "$PY" bench/peft_reference.py --shape "$shape" "${cfg[@]}" --seq "$seq" --batch "$batch" --steps "$steps" \
    --precision "$PRECISION" --device "$PEFT_DEVICE" "${CK_FLAG[@]}" "${PEAK_FLAG[@]}"
  if [ -n "$STUDIO_SKIP" ]; then
    record studio "$shape" "$seq" "$batch" 0 0 /dev/null /dev/null "not run: $STUDIO_SKIP"
  else
    side studio "$shape" "$seq" "$batch" "$cap_studio" -- \
      node --import tsx --expose-gc bench/train-step.ts --backend "$STUDIO_BACKEND" --shape "$shape" --seq "$seq" \
      --batch "$batch" --steps "$steps" --precision "$PRECISION" "${CK_FLAG[@]}" "${PEAK_FLAG[@]}"
  fi
done

# --- the table ----------------------------------------------------------------------------------------------------
say "writing $OUT/results.md and $OUT/results.json"
"$PY" - "$RECORDS" "$ENVJSON" "$OUT" "$PRECISION" "$CKPT" "$STUDIO_BACKEND" <<'EOF'
import datetime, json, sys
records_path, env_path, out, precision, ckpt, studio_backend = sys.argv[1:7]
records = [json.loads(l) for l in open(records_path) if l.strip()]
env = json.load(open(env_path))
cases = []
for r in records:
    key = (r["shape"], r["seq"], r["batch"])
    if key not in cases:
        cases.append(key)

def get(shape, seq, batch, side):
    for r in records:
        if (r["shape"], r["seq"], r["batch"], r["side"]) == (shape, seq, batch, side):
            return r
    return None

def mem(row):
    if not row:
        return None
    return row.get("peakGpuMiB", row.get("peakRssMiB"))

def f(v, digits=0, pct=False):
    if v is None:
        return "—"
    if pct:
        return f"{100 * v:.1f}%"
    return f"{v:,.{digits}f}"

studio_name = "studio " + studio_backend
lines = [
    f"# LoRA training: {studio_name} vs PyTorch + PEFT",
    "",
    f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} · precision {precision} · "
    f"gradient checkpointing {'on' if ckpt == '1' else 'off'} · LoRA r 8, alpha 16, all 7 projections, dropout 0 · AdamW",
    "",
]
for k in ("nvidiaSmi", "adapter", "node", "python", "peak"):
    if k in env:
        lines.append(f"- {k}: `{env[k]}`")
lines += [
    "- MFU: model FLOPs of bench/flops.ts (4·N·P_frozen + 6·N·P_lora + causal attention ×3, no recompute) over the peak above",
    "- memory: peak allocated GPU memory, weights included (PEFT: torch.cuda.max_memory_allocated; studio: its allocator's peak)"
    if studio_backend == "webgpu" else "- memory: peak RSS of the process",
    "",
    "| shape | seq×batch | PEFT tok/s | studio tok/s | studio/PEFT | PEFT step ms | studio step ms | PEFT peak MiB | studio peak MiB | PEFT MFU | studio MFU | PEFT loss | studio loss | notes |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
]
summary = []
for shape, seq, batch in cases:
    p, s = get(shape, seq, batch, "peft"), get(shape, seq, batch, "studio")
    pr, sr = (p or {}).get("row"), (s or {}).get("row")
    ratio = sr["tokensPerSecond"] / pr["tokensPerSecond"] if pr and sr else None
    notes = []
    for name, r in (("PEFT", p), ("studio", s)):
        if r and r.get("note"):
            notes.append(f"{name}: {r['note']}".replace("|", "/"))
    if sr and mem(sr) is not None and shape == "llama-7b" and studio_backend == "webgpu":
        notes.append(f"studio fits 14 GB: {'yes' if mem(sr) <= 14 * 1024 else 'no'}")
    lines.append(
        f"| {shape} | {seq}×{batch} | {f(pr and pr['tokensPerSecond'])} | {f(sr and sr['tokensPerSecond'])} | "
        f"{f(ratio, 2)} | {f(pr and pr['stepMs'], 1)} | {f(sr and sr['stepMs'], 1)} | {f(mem(pr))} | {f(mem(sr))} | "
        f"{f(pr and pr.get('mfu'), pct=True)} | {f(sr and sr.get('mfu'), pct=True)} | {f(pr and pr.get('loss'), 3)} | "
        f"{f(sr and sr.get('loss'), 3)} | {'; '.join(notes)} |")
    summary.append({"shape": shape, "seq": seq, "batch": batch, "peft": p, "studio": s, "tokensPerSecondRatio": ratio})
md = "\n".join(lines) + "\n"
open(f"{out}/results.md", "w").write(md)
json.dump({"env": env, "precision": precision, "checkpointing": ckpt == "1", "cases": summary}, open(f"{out}/results.json", "w"), indent=2)
print(md)
EOF
say "done in $(elapsed)s"
rm -rf "$TMPD"
