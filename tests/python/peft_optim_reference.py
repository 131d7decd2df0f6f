"""Reference numbers for the studio's optimizer pieces, computed by PyTorch / transformers themselves.

Reads a JSON spec (path in argv[1]) and prints one JSON object:
  adamw:     torch.optim.AdamW over the given gradients and per-step learning rates -> parameters after every step
  schedules: transformers.get_{constant,linear,cosine}_schedule_with_warmup -> lr of every optimizer step
  clip:      list of cases for torch.nn.utils.clip_grad_norm_ -> total norm and clipped gradients of each
  scaler:    torch.amp.GradScaler('cpu') driving AdamW, gradients given unscaled (inf/nan allowed) -> scale, whether the
             optimizer stepped, and parameters after every step
"""
import json
import math
import sys

import torch
import transformers


def tensors(lists):
    return [torch.tensor(x, dtype=torch.float32) for x in lists]



def from_json_num(x):
    return float(x) if isinstance(x, str) else x


def adamw(spec):
    params = [torch.nn.Parameter(t) for t in tensors(spec["params"])]
    opt = torch.optim.AdamW(params, lr=spec["lrs"][0], betas=tuple(spec["betas"]), eps=spec["eps"], weight_decay=spec["weight_decay"])
    out = []
    for grads, lr in zip(spec["grads"], spec["lrs"]):
        for g in opt.param_groups:
            g["lr"] = lr
        for p, g in zip(params, tensors(grads)):
            p.grad = g
        opt.step()
        out.append([p.detach().tolist() for p in params])
    return out


def schedules(specs):
    res = []
    for s in specs:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=s["base_lr"])
        make = {
            "constant": lambda o: transformers.get_constant_schedule_with_warmup(o, s["warmup"]),
            "linear": lambda o: transformers.get_linear_schedule_with_warmup(o, s["warmup"], s["total"]),
            "cosine": lambda o: transformers.get_cosine_schedule_with_warmup(o, s["warmup"], s["total"]),
        }[s["kind"]]
        sched = make(opt)
        lrs = []
        for _ in range(s["total"]):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        res.append(lrs)
    return res


def clip(spec):
    params = [torch.nn.Parameter(torch.zeros(len(g))) for g in spec["grads"]]
    for p, g in zip(params, tensors(spec["grads"])):
        p.grad = g
    norm = torch.nn.utils.clip_grad_norm_(params, spec["max_norm"])
    return {"norm": float(norm), "grads": [p.grad.tolist() for p in params]}


def scaler(spec):
    params = [torch.nn.Parameter(t) for t in tensors(spec["params"])]
    opt = torch.optim.AdamW(params, lr=spec["lr"], weight_decay=0.0)
    sc = torch.amp.GradScaler("cpu", init_scale=spec["init_scale"], growth_interval=spec["growth_interval"])
    steps = []
    for grads in spec["grads"]:
        sc.scale(torch.ones(()))  # lazily creates the scale tensor, as scaling a real loss would
        scale = sc.get_scale()
        for p, g in zip(params, grads):
            # what backward of (loss * scale) would have produced
            p.grad = torch.tensor([from_json_num(x) for x in g], dtype=torch.float32) * scale
        before = opt.state[params[0]].get("step", torch.tensor(0.0)).item() if params[0] in opt.state else 0
        sc.step(opt)
        sc.update()
        after = opt.state[params[0]]["step"].item() if params[0] in opt.state else 0
        steps.append({"scale_used": scale, "stepped": after > before, "scale_after": sc.get_scale(), "params": [p.detach().tolist() for p in params]})
    return steps


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    out = {}
    if "adamw" in spec:
        out["adamw"] = adamw(spec["adamw"])
    if "schedules" in spec:
        out["schedules"] = schedules(spec["schedules"])
    if "clip" in spec:
        out["clip"] = [clip(c) for c in spec["clip"]]
    if "scaler" in spec:
        out["scaler"] = scaler(spec["scaler"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
