#!/usr/bin/env python3
"""
LoRA Studio bundle trainer: the run this folder was exported from, on Hugging Face transformers + PEFT + Accelerate
(one GPU, DDP, DeepSpeed ZeRO-2, FSDP: whatever `accelerate launch` is given). Everything the run depends on comes
from the bundle, not from this script's defaults:

  bundle.json              the settings (LoRA, AdamW, schedule, clipping, precision, steps, seed, ...)
  data/train.jsonl         the training split exactly as the studio prepared it (token ids, labels with -100, packing)
  data/validation.jsonl    the validation split
  data/plan.jsonl          per optimizer step: which examples form each micro-batch, the step's target tokens, its
                           learning rate and the studio's dropout seeds
  initial_adapter/         the LoRA weights the studio would have started from (PEFT's init, drawn by the studio)

A step is the studio's step: the same examples, the gradient of (sum of token losses) / (target tokens of the
step), clipped, then AdamW. The micro-batch rows are shared out over the processes (row b of a micro-batch goes to
process b mod world_size), so the result does not depend on how many GPUs run it.

Output (--output, default ./output): metrics.jsonl (one line per step, the studio's MetricPoint), status.json,
adapter/ (a PEFT adapter folder, when the run completes). The studio follows that folder ("Follow an external run").
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
IGNORE_INDEX = -100
M32 = 0xFFFFFFFF


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Train the LoRA Studio run exported into this folder (launch with `accelerate launch`).")
    p.add_argument("--output", default=str(HERE / "output"), help="folder for metrics.jsonl, status.json and adapter/ (default: ./output)")
    p.add_argument("--model", default=None, help="base model: a Hugging Face hub id or a local folder (default: the one bundle.json names)")
    p.add_argument(
        "--dropout",
        choices=["torch", "studio"],
        default="torch",
        help="LoRA dropout masks: 'torch' = PEFT's nn.Dropout (fast; the masks differ from the studio's), "
        "'studio' = the studio's own masks, drawn from its seeds (identical run; pure Python, for small models)",
    )
    p.add_argument("--attn", default="sdpa", help="attention implementation for transformers: sdpa (default), eager, flash_attention_2")
    p.add_argument("--base-dtype", choices=["float32", "bfloat16", "float16"], default="float32", help="dtype the frozen base weights are loaded in (float32 = as the studio computes)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (a shorter trial of the same run)")
    p.add_argument("--check", action="store_true", help="check the bundle, the model and the launch configuration, then exit without training")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# The studio's random numbers (engine/util/rng.ts: xoshiro128** seeded through splitmix32), for --dropout studio


def _splitmix32(seed):
    s = seed & M32
    while True:
        s = (s + 0x9E3779B9) & M32
        z = s
        z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
        z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
        yield (z ^ (z >> 16)) & M32


def studio_keep_masks(seed, sizes, p):
    """Keep flags (bytearrays, 1 = kept) of consecutive masks of the given sizes, as engine/model/llama.ts drawMasks
    draws them from Rng(seed): entry i is dropped when uniform() = u32 / 2^32 < p."""
    g = _splitmix32(seed)
    s0, s1, s2, s3 = next(g), next(g), next(g), next(g)
    if (s0 | s1 | s2 | s3) == 0:
        s0 = 1
    threshold = p * 4294967296.0  # u32 / 2^32 < p  <=>  u32 < p * 2^32 (both sides exact in binary floating point)
    out = []
    for n in sizes:
        keep = bytearray(n)
        for i in range(n):
            m = (s1 * 5) & M32
            r = ((((m << 7) | (m >> 25)) & M32) * 9) & M32
            t = (s1 << 9) & M32
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = ((s3 << 11) | (s3 >> 21)) & M32
            if r >= threshold:
                keep[i] = 1
        out.append(keep)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Bundle files


def read_json(path):
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path):
    rows = []
    with open(path, "r", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{n}: not valid JSON ({e})")
    return rows


def load_examples(path):
    rows = read_jsonl(path)
    for n, r in enumerate(rows, 1):
        ids, labels = r.get("input_ids"), r.get("labels")
        if not isinstance(ids, list) or not isinstance(labels, list) or len(ids) != len(labels):
            raise SystemExit(f"{path}:{n}: expected input_ids and labels of the same length")
    return rows


def write_atomic(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def now_iso():
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def resolve_model(bundle, override):
    """(name_or_path, gguf_file): --model, else the copy inside the bundle, else the studio's path, else the hub id."""
    m = bundle["model"]
    candidates = []
    if override:
        candidates.append(override)
    if m.get("included"):
        candidates.append(str(HERE / m["included"]))
    if m.get("path"):
        candidates.append(m["path"])
    for c in candidates:
        if os.path.exists(c) or c == override:
            if c.endswith(".gguf"):
                return os.path.dirname(c) or ".", os.path.basename(c)
            return c, None
    if m.get("hubId"):
        return m["hubId"], m.get("ggufFile")
    raise SystemExit(
        f"the base model is not here: {m.get('path')!r} does not exist on this machine and the bundle names no hub id; "
        "pass --model <hub id or folder>"
    )


# ---------------------------------------------------------------------------------------------------------------
# Training


def main(argv=None):
    args = parse_args(argv)
    bundle = read_json(HERE / "bundle.json")
    if bundle.get("format") != "lora-studio-bundle" or bundle.get("version") != 1:
        raise SystemExit(f"{HERE / 'bundle.json'}: not a LoRA Studio bundle of version 1")

    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, InitProcessGroupKwargs

    # Without a GPU the processes train on the CPU over gloo (`accelerate launch --multi_gpu --num_processes N`
    # starts them; `--cpu` alone starts one process). DeepSpeed brings its own CPU accelerator and must not be told.
    use_deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    no_gpu = not torch.accelerator.is_available()
    handlers = []
    if use_deepspeed and no_gpu:
        # Accelerate only counts DeepSpeed's processes when it is told the backend (DeepSpeed's CPU one is gloo).
        handlers.append(InitProcessGroupKwargs(backend="gloo"))
    accelerator = Accelerator(gradient_accumulation_steps=bundle["gradAccumulation"], cpu=no_gpu and not use_deepspeed, kwargs_handlers=handlers)
    rank, world = accelerator.process_index, accelerator.num_processes
    main_process = accelerator.is_main_process
    out_dir = Path(args.output).resolve()
    status = {
        "format": "lora-studio-external-run",
        "version": 1,
        "runId": uuid.uuid4().hex,
        "bundleId": bundle.get("bundleId"),
        "sourceRunId": bundle.get("source", {}).get("runId"),
        "name": bundle.get("source", {}).get("name"),
        "state": "starting",
        "step": 0,
        "totalSteps": bundle["steps"] if args.max_steps is None else min(args.max_steps, bundle["steps"]),
        "worldSize": world,
        "distributedType": str(accelerator.distributed_type).split(".")[-1],
        "mixedPrecision": accelerator.mixed_precision,
        "dropoutMasks": args.dropout,
        "zeroStage": accelerator.state.deepspeed_plugin.zero_stage if accelerator.distributed_type == DistributedType.DEEPSPEED else None,
        "startedAt": now_iso(),
        "updatedAt": now_iso(),
        "finishedAt": None,
        "error": None,
        "adapterDir": None,
        "finalValidationLoss": None,
        "host": os.uname().nodename if hasattr(os, "uname") else None,
    }

    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" and accelerator.distributed_type != DistributedType.FSDP:
        accelerator.print(f"note: accelerate runs FSDP only on GPUs; these {world} process(es) train as {status['distributedType']} instead")

    def save_status(**patch):
        status.update(patch, updatedAt=now_iso())
        if main_process and not args.check:
            write_atomic(out_dir / "status.json", json.dumps(status, indent=2) + "\n")

    if main_process and not args.check:
        out_dir.mkdir(parents=True, exist_ok=True)
        # A new launch is a new run: the follower sees the new runId and starts the curve again.
        for stale in ("metrics.jsonl", "status.json"):
            (out_dir / stale).unlink(missing_ok=True)
        save_status()
    try:
        return train(args, bundle, accelerator, out_dir, status, save_status, torch, F, DistributedType, rank, world, main_process)
    except BaseException as e:  # noqa: BLE001 - the status file must say why the run ended, whatever it was
        if main_process and not args.check:
            msg = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            save_status(state="failed", error=msg, finishedAt=now_iso())
            traceback.print_exc()
        raise


def train(args, bundle, accelerator, out_dir, status, save_status, torch, F, DistributedType, rank, world, main_process):
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

    G = bundle["gradAccumulation"]
    total_steps = bundle["steps"]
    run_steps = total_steps if args.max_steps is None else min(args.max_steps, total_steps)
    lora = bundle["lora"]
    optim = bundle["optim"]
    data = bundle["data"]
    pad_id = data["padTokenId"]
    torch.manual_seed(bundle["seed"] + rank)  # only PEFT's own dropout (--dropout torch) draws from it

    train_rows = load_examples(HERE / data["train"])
    val_rows = load_examples(HERE / data["validation"]) if data.get("validation") else []
    plan = read_jsonl(HERE / data["plan"])
    if len(train_rows) != data["trainExamples"] or len(plan) != total_steps:
        raise SystemExit(f"bundle data does not match bundle.json: {len(train_rows)} training examples (expected {data['trainExamples']}), {len(plan)} planned steps (expected {total_steps})")

    # --- model + LoRA ------------------------------------------------------------------------------------------
    name_or_path, gguf_file = resolve_model(bundle, args.model)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.base_dtype]
    kwargs = {"dtype": dtype, "attn_implementation": args.attn}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    model.config.use_cache = False
    if bundle["model"].get("frozenWeightsF16") and dtype == torch.float32:
        # The studio ran with its base weights rounded to f16 (and computed in f32): the same values here.
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    num_layers = model.config.num_hidden_layers
    if num_layers != bundle["model"]["numLayers"]:
        raise SystemExit(f"{name_or_path} has {num_layers} layers, the bundle was made for a model with {bundle['model']['numLayers']}")
    if bundle["gradientCheckpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=list(lora["targets"]),
        use_rslora=lora["rslora"],
        bias="none",
        task_type="CAUSAL_LM",
        init_lora_weights=True,
    )
    model = get_peft_model(model, config)
    # Step 0 is the studio's: its initial adapter replaces PEFT's random init.
    initial = load_file(str(HERE / bundle["initialAdapter"] / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, initial)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if result.unexpected_keys or missing:
        raise SystemExit(f"initial adapter does not fit the model: unexpected {result.unexpected_keys[:5]}, missing {missing[:5]}")
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)

    # --- the studio's dropout masks ----------------------------------------------------------------------------
    masks = {"current": {}}
    target_in = {}
    if args.dropout == "studio" and lora["dropout"] > 0:
        install_studio_dropout(model, torch, lora["dropout"], masks, target_in)

    optimizer = torch.optim.AdamW(trainable, lr=optim["learningRate"], betas=(optim["beta1"], optim["beta2"]), eps=optim["eps"], weight_decay=optim["weightDecay"])
    sched = bundle["schedule"]
    make = {"constant": get_constant_schedule_with_warmup, "linear": get_linear_schedule_with_warmup, "cosine": get_cosine_schedule_with_warmup}[sched["kind"]]
    scheduler = make(optimizer, sched["warmupSteps"]) if sched["kind"] == "constant" else make(optimizer, sched["warmupSteps"], sched["totalSteps"])
    deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    rows_per_rank = max(1, math.ceil(bundle["batchSize"] / world))
    if deepspeed:
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        # There is no DataLoader for DeepSpeed to size its batches from: each process takes rows_per_rank rows.
        if ds.get("train_micro_batch_size_per_gpu", "auto") == "auto":
            ds["train_micro_batch_size_per_gpu"] = rows_per_rank
        if ds.get("train_batch_size") == "auto":
            ds["train_batch_size"] = rows_per_rank * G * world
    # The scheduler stays outside prepare(): it steps once per studio step, whatever the number of processes.
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device

    summary = (
        f"{status['name'] or 'bundle'}: {run_steps} of {total_steps} steps on {world} process(es) ({status['distributedType']}, "
        f"mixed precision {accelerator.mixed_precision}), {n_trainable} trainable parameters, LoRA r={lora['r']} alpha={lora['alpha']} "
        f"dropout={lora['dropout']} ({args.dropout} masks), {len(train_rows)} training / {len(val_rows)} validation examples"
    )
    accelerator.print(summary)
    if args.check:
        accelerator.print("check: the bundle, the model and the launch configuration are usable")
        return 0
    save_status(state="running")

    def batch_tensor(rows, seq_len, n_rows):
        ids = torch.full((n_rows, seq_len), pad_id, dtype=torch.long)
        labels = torch.full((n_rows, seq_len), IGNORE_INDEX, dtype=torch.long)
        for j, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[j, :n] = torch.tensor(r["input_ids"], dtype=torch.long)
            labels[j, :n] = torch.tensor(r["labels"], dtype=torch.long)
        return ids.to(device), labels.to(device)

    def loss_sum(ids, labels):
        logits = model(input_ids=ids, use_cache=False).logits.float()
        v = logits.shape[-1]
        return F.cross_entropy(logits[:, :-1, :].reshape(-1, v), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")

    val_batch = bundle["batchSize"]
    val_batches = [val_rows[i : i + val_batch] for i in range(0, len(val_rows), val_batch)]

    def validation_loss():
        # Every process runs the same number of forwards (FSDP gathers weights in each): batch i goes to process
        # i mod world, the missing ones are empty batches that add nothing.
        model.eval()
        local = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad():
            for i in range(math.ceil(len(val_batches) / world)):
                bi = i * world + rank
                rows = val_batches[bi] if bi < len(val_batches) else []
                seq = max([len(r["input_ids"]) for r in rows], default=2)
                ids, labels = batch_tensor(rows, seq, max(1, len(rows)))
                local[0] += loss_sum(ids, labels).double()
                local[1] += (labels[:, 1:] != IGNORE_INDEX).sum().double()
        model.train()
        total = accelerator.reduce(local, reduction="sum")
        return float(total[0] / total[1]) if total[1] > 0 else None

    metrics_path = out_dir / "metrics.jsonl"
    metrics_file = open(metrics_path, "a", encoding="utf-8") if main_process else None
    elapsed_ms = 0.0
    eval_every = bundle["evalEverySteps"]
    max_norm = optim["maxGradNorm"] if optim["maxGradNorm"] > 0 else float("inf")
    scaler = getattr(accelerator, "scaler", None)
    model.train()
    last_val = None
    for k in range(run_steps):
        p = plan[k]
        started = time.perf_counter()
        n_tokens = p["tokens"]
        lr = optimizer.param_groups[0]["lr"]
        scale_used = float(scaler.get_scale()) if scaler is not None else ds_loss_scale(model) if deepspeed else None
        local = torch.zeros(1, dtype=torch.float64, device=device)
        grad_norm = None
        if n_tokens > 0:
            for mb in p["micro"]:
                mine = [b for b in range(len(mb["examples"])) if b % world == rank]
                rows = [train_rows[mb["examples"][b]] for b in mine]
                seq = mb["seqLen"]
                ids, labels = batch_tensor(rows, seq, rows_per_rank)
                if target_in:
                    masks["current"] = micro_masks(torch, mb, mine, rows_per_rank, seq, lora["dropout"], target_in, device)
                with accelerator.accumulate(model):
                    s = loss_sum(ids, labels)
                    local += s.detach().double()
                    # accelerate divides by the accumulation steps and the processes average: undo both, so the
                    # gradient is (sum of the step's token losses) / (the step's target tokens), as the studio's.
                    accelerator.backward(s * (world * G / n_tokens))
                    if accelerator.sync_gradients:
                        norm = accelerator.clip_grad_norm_(trainable, max_norm)
                        grad_norm = None if norm is None else float(norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
        masks["current"] = {}
        skipped = n_tokens == 0 or bool(accelerator.optimizer_step_was_skipped)
        scheduler.step()  # the studio's rate depends on the step number only, skipped or not
        total = accelerator.reduce(local, reduction="sum")
        ms = (time.perf_counter() - started) * 1000
        elapsed_ms += ms
        point = {
            "step": k + 1,
            "loss": float(total[0]) / n_tokens if n_tokens > 0 else None,
            "learningRate": lr,
            "tokens": n_tokens,
            "tokensPerSecond": n_tokens * 1000 / ms if ms > 0 else 0,
            "elapsedMs": elapsed_ms,
            "gradNorm": grad_norm if grad_norm is not None and math.isfinite(grad_norm) and not skipped else 0,
        }
        if scale_used is not None and accelerator.mixed_precision == "fp16":
            point["lossScale"] = scale_used
        if skipped:
            point["skipped"] = True
        if (eval_every > 0 and (k + 1) % eval_every == 0) or k + 1 == run_steps:
            v = validation_loss()
            if v is not None:
                point["validationLoss"] = v
                last_val = v
        if metrics_file:
            metrics_file.write(json.dumps(point) + "\n")
            metrics_file.flush()
            os.fsync(metrics_file.fileno())
            loss_text = "n/a" if point["loss"] is None else f"{point['loss']:.6f}"
            val_text = f" val {point['validationLoss']:.6f}" if "validationLoss" in point else ""
            print(f"step {k + 1}/{run_steps} loss {loss_text} lr {lr:.3e} grad norm {point['gradNorm']:.4f}{val_text}{' (skipped)' if skipped else ''}", flush=True)
        save_status(step=k + 1)

    # --- the adapter -------------------------------------------------------------------------------------------
    accelerator.wait_for_everyone()
    state_dict = accelerator.get_state_dict(model)  # every process takes part (FSDP gathers the shards)
    if main_process:
        unwrapped = accelerator.unwrap_model(model)
        adapter_dir = out_dir / "adapter"
        unwrapped.save_pretrained(str(adapter_dir), state_dict=state_dict, safe_serialization=True)
        metrics_file.close()
        save_status(state="completed", finishedAt=now_iso(), adapterDir="adapter", finalValidationLoss=last_val)
        print(f"done: adapter in {adapter_dir}", flush=True)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


def ds_loss_scale(model):
    """DeepSpeed's current fp16 loss scale (its engine keeps it on the optimizer), or None."""
    opt = getattr(model, "optimizer", None)
    for attr in ("cur_scale", "loss_scale"):
        v = getattr(opt, attr, None)
        if isinstance(v, (int, float)):
            return float(v)
    return None


LAYER_RE = re.compile(r"layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$")
TARGET_ORDER = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def install_studio_dropout(model, torch, p, masks, target_in):
    """Puts a module that applies the studio's mask of (layer, target) in place of every LoRA dropout."""

    class StudioDropout(torch.nn.Module):
        def __init__(self, layer, target):
            super().__init__()
            self.layer, self.target = layer, target

        def forward(self, x):
            if not self.training:
                return x
            m = masks["current"].get((self.layer, self.target))
            if m is None:
                raise RuntimeError(f"no studio dropout mask for layer {self.layer} {self.target}")
            # Kept entries scaled by 1 / (1 - p), as nn.Dropout and the studio do.
            return x * m.to(dtype=x.dtype)

    for name, module in model.named_modules():
        m = LAYER_RE.search(name)
        if m and hasattr(module, "lora_dropout") and "default" in module.lora_dropout:
            layer, target = int(m.group(1)), m.group(3)
            module.lora_dropout["default"] = StudioDropout(layer, target)
            target_in[(layer, target)] = module.in_features
    if not target_in:
        raise SystemExit("--dropout studio: no LoRA dropout modules found in the model")


def micro_masks(torch, mb, mine, rows_per_rank, seq, p, target_in, device):
    """This process's rows of the studio's masks for one micro-batch: each layer's seed draws, target by target in
    module order, a [batch, seq, in] mask over the whole studio micro-batch; the rows this process holds are kept."""
    seeds = mb.get("dropoutSeeds")
    if not seeds:
        raise SystemExit("--dropout studio: the plan has no dropout seeds for this step (was the bundle exported with dropout 0?)")
    batch = len(mb["examples"])
    layers = sorted({layer for layer, _ in target_in})
    out = {}
    for layer in layers:
        targets = [t for t in TARGET_ORDER if (layer, t) in target_in]
        sizes = [batch * seq * target_in[(layer, t)] for t in targets]
        for t, keep in zip(targets, studio_keep_masks(seeds[layer], sizes, p)):
            full = torch.frombuffer(keep, dtype=torch.uint8).view(batch, seq, target_in[(layer, t)])
            local = torch.ones(rows_per_rank, seq, target_in[(layer, t)], dtype=torch.float32)
            for j, b in enumerate(mine):
                local[j] = full[b].float()
            out[(layer, t)] = (local * (1.0 / (1.0 - p))).to(device)
    return out


if __name__ == "__main__":
    sys.exit(main())
