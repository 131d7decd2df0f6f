"""The PyTorch + transformers + PEFT side of the training benchmark: the same shape, batch, sequence, LoRA settings
and precision as `bench/train-step.ts`, with random weights built from the same config.json (no downloads), printing
ONE JSON line with the same keys.

  python bench/peft_reference.py --shape llama-7b --seq 2048 --batch 1 --steps 4 --precision fp16 --checkpointing
  python bench/peft_reference.py --config path/to/config.json --shape mine ...
  python bench/peft_reference.py --print-peak --precision fp16      # the table's peak TFLOP/s for this GPU

Precision: fp32 (weights and math in fp32); fp16 (frozen weights fp16, LoRA weights fp32 as PEFT keeps them,
torch.autocast fp16 and GradScaler: the studio's mixed precision); bf16 (weights bf16, autocast bf16, no scaler).
Each step: forward with labels (transformers' causal-LM loss), backward, unscale, clip the global grad norm to 1.0,
AdamW (torch.optim.AdamW, lr 1e-4), as the studio's step does. The first --warmup steps are not timed.
Peak memory: torch.cuda.max_memory_allocated (weights included) on cuda, peak RSS on cpu.
FLOPs per step and MFU: the formula documented in bench/flops.ts, mirrored by training_flops() below.
"""
import argparse
import json
import re
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

# Nothing outside can be reached on the GPU machine: never let transformers try.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 deprecation notes, not ours

ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# Mirrors PEAK_TFLOPS in bench/flops.ts (same patterns, same order): dense data-sheet peaks, fp32 = plain FP32 (no TF32).
PEAK_TFLOPS = [
    (r"H100.*PCIe", {"fp16": 756.5, "bf16": 756.5, "fp32": 51.2}),
    (r"H100", {"fp16": 989.4, "bf16": 989.4, "fp32": 66.9}),
    (r"H200", {"fp16": 989.4, "bf16": 989.4, "fp32": 66.9}),
    (r"A100", {"fp16": 312, "bf16": 312, "fp32": 19.5}),
    (r"RTX 4090", {"fp16": 165.2, "bf16": 165.2, "fp32": 82.6}),
    (r"\bL4\b", {"fp16": 121, "bf16": 121, "fp32": 30.3}),
]


def peak_tflops_for(device_name, precision):
    for pattern, peaks in PEAK_TFLOPS:
        if re.search(pattern, device_name, re.IGNORECASE):
            return peaks[precision]
    return None


def flop_shape(cfg):
    def num(k):
        v = cfg.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise SystemExit(f"config.json: {k} must be a positive integer, got {v!r}")
        return v

    hidden, heads = num("hidden_size"), num("num_attention_heads")
    return {
        "hidden": hidden,
        "layers": num("num_hidden_layers"),
        "heads": heads,
        "kv_heads": heads if cfg.get("num_key_value_heads") is None else num("num_key_value_heads"),
        "head_dim": hidden // heads if cfg.get("head_dim") is None else num("head_dim"),
        "intermediate": num("intermediate_size"),
        "vocab": num("vocab_size"),
    }


def linear_dims(s, t):
    q, kv, h, i = s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"], s["hidden"], s["intermediate"]
    return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
            "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}[t]


def training_flops(s, r, targets, batch, seq):
    """bench/flops.ts trainingFlops(), line for line: 4·N·P_mm + 6·N·P_lora + 3·A_fwd."""
    matmul_params = s["layers"] * sum(a * b for a, b in (linear_dims(s, t) for t in ALL_TARGETS)) + s["vocab"] * s["hidden"]
    lora_params = s["layers"] * sum(r * (a + b) for a, b in (linear_dims(s, t) for t in set(targets)))
    attention_forward = batch * s["layers"] * s["heads"] * 2 * s["head_dim"] * seq * (seq + 1)
    tokens = batch * seq
    total = tokens * 4 * matmul_params + tokens * 6 * lora_params + 3 * attention_forward
    return {"matmulParams": matmul_params, "loraParams": lora_params, "attentionForward": attention_forward, "total": total}


def load_config(args):
    if args.config:
        p = Path(args.config)
        p = p / "config.json" if p.is_dir() else p
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"--config {p}: {e}")
    # The shapes live in bench/shapes.ts; ask node for the one named rather than keeping a second copy here.
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["node", "--import", "tsx", str(root / "bench" / "shape-config.ts"), args.shape],
                             cwd=root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SystemExit(f"--shape {args.shape}: could not run node to read bench/shapes.ts ({e}); pass --config")
    if out.returncode != 0:
        raise SystemExit(f"--shape {args.shape}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="tiny", help="a shape of bench/shapes.ts (read through node), or a label with --config")
    ap.add_argument("--config", help="config.json (or a folder holding one) to build the model from")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3, help="steps in all; the first --warmup are not timed")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default="fp32")
    ap.add_argument("--checkpointing", action="store_true")
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--targets", default=",".join(ALL_TARGETS), help="comma-separated LoRA targets")
    ap.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    ap.add_argument("--attn", default="sdpa", help="transformers attn_implementation (sdpa, eager)")
    ap.add_argument("--peak-tflops", type=float, help="peak TFLOP/s for MFU (default: the table, by GPU name)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gguf", help="a real model's GGUF file (transformers dequantizes it) instead of random weights from --shape's config")
    ap.add_argument("--count-flops", action="store_true",
                    help="also count one step's FLOPs with torch.utils.flop_counter and report it beside the formula")
    ap.add_argument("--print-peak", action="store_true", help="print the table's peak TFLOP/s for this GPU and exit")
    a = ap.parse_args()
    bad = [t for t in a.targets.split(",") if t not in ALL_TARGETS]
    if bad:
        ap.error(f"--targets: unknown {', '.join(bad)} (known: {', '.join(ALL_TARGETS)})")
    if a.steps <= a.warmup:
        ap.error(f"--steps ({a.steps}) must exceed --warmup ({a.warmup})")
    return a


def main():
    args = parse_args()
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    device_name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    peak = args.peak_tflops if args.peak_tflops is not None else (peak_tflops_for(device_name, args.precision) if device == "cuda" else None)
    if args.print_peak:
        print(json.dumps({"deviceName": device_name, "precision": args.precision, "peakTflops": peak}))
        return

    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    hf = load_config(args)
    targets = args.targets.split(",")
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(args.seed)
    config = AutoConfig.for_model(**hf)
    config.use_cache = False
    t_build = time.perf_counter()
    if args.gguf:
        gguf = os.path.abspath(args.gguf)
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf), dtype=dtype, attn_implementation=args.attn).to(device)
        model.config.use_cache = False
    else:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=args.attn)
    if args.checkpointing:
        # Non-reentrant: works with frozen embeddings without enable_input_require_grads, as PEFT recommends.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=0.0, target_modules=targets, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)  # adapters in fp32 over an fp16/bf16 base (autocast_adapter_dtype)
    model.train()
    build_s = time.perf_counter() - t_build

    params = [p for p in model.parameters() if p.requires_grad]
    total_params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler(device) if args.precision == "fp16" else None

    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(0, hf["vocab_size"], (args.batch, args.seq), generator=gen).to(device)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=dtype, enabled=args.precision != "fp32"):
            loss = model(input_ids=ids, labels=ids).loss
        skipped = False
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            before = scaler.get_scale()
            scaler.step(opt)
            scaler.update()
            skipped = scaler.get_scale() < before
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        return loss, skipped

    times, skipped_steps, loss = [], 0, None
    for s in range(args.steps):
        sync()
        t0 = time.perf_counter()
        loss_t, skipped = step()
        sync()
        if s >= args.warmup:
            times.append((time.perf_counter() - t0) * 1000)
        loss = float(loss_t.detach().float())
        skipped_steps += int(skipped)

    shape = flop_shape(hf)
    flops = training_flops(shape, args.r, targets, args.batch, args.seq)
    # The formula's parameter counts must be the model's: an independent check that both read the config alike.
    linear_params = 0
    for name, m in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ALL_TARGETS or leaf == "lm_head":
            linear_params += (m.base_layer if hasattr(m, "base_layer") else m).weight.numel()
    if trainable != flops["loraParams"] or linear_params != flops["matmulParams"]:
        print(f"warning: formula counts {flops['matmulParams']} matmul / {flops['loraParams']} LoRA parameters, "
              f"the model has {linear_params} / {trainable}", file=sys.stderr)

    step_ms = sum(times) / len(times)
    tokens = args.batch * args.seq
    peak_flops = peak * 1e12 if peak else None
    row = {
        "bench": "train",
        "backend": "peft",
        "device": device,
        "deviceName": device_name,
        "shape": args.shape,
        "params": total_params,
        "trainableParams": trainable,
        "batch": args.batch,
        "seq": args.seq,
        "steps": args.steps,
        "precision": args.precision,
        "checkpointing": args.checkpointing,
        "attn": args.attn,
        "stepMs": step_ms,
        "tokensPerSecond": tokens / step_ms * 1000,
        "flopsPerStep": flops["total"],
        "peakTflops": peak,
        "mfu": flops["total"] / (step_ms / 1000) / peak_flops if peak_flops else None,
        "loss": loss,
        "skippedSteps": skipped_steps,
        "buildSeconds": round(build_s, 2),
        "torch": torch.__version__,
    }
    if scaler is not None:
        row["lossScale"] = scaler.get_scale()
    if device == "cuda":
        row["peakGpuMiB"] = torch.cuda.max_memory_allocated() / 2**20
        row["peakGpuReservedMiB"] = torch.cuda.max_memory_reserved() / 2**20
    else:
        row["peakRssMiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if args.count_flops:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            step()
        counted = counter.get_total_flops()
        # The counter charges attention for the full T×T square (masked or not) and, with checkpointing, the
        # recomputed forward; set both aside to compare the rest with the formula.
        s_ = shape
        full_attn = 3 * args.batch * s_["layers"] * s_["heads"] * 4 * s_["head_dim"] * args.seq * args.seq
        row["countedFlops"] = counted
        row["countedLessAttentionOverFormula"] = (counted - full_attn) / (flops["total"] - 3 * flops["attentionForward"])
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
