"""Checks an exported bundle's launch configurations with accelerate's own readers, for the bundle test.

argv[1]: the bundle folder. Every accelerate/*.yaml is read by accelerate's config loader (what `accelerate launch
--config_file` reads), and the DeepSpeed JSON goes through accelerate's DeepSpeedPlugin and DeepSpeed's own config
class with the batch layout train.py fills in. Prints one JSON object describing what was read.
"""
import json
import os
import sys

from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DeepSpeedPlugin


def main():
    bundle = sys.argv[1]
    os.chdir(bundle)
    out = {}
    for name in sorted(os.listdir("accelerate")):
        if not name.endswith(".yaml"):
            continue
        cfg = load_config_from_file(os.path.join("accelerate", name))
        out[name] = {
            "distributed_type": str(cfg.distributed_type).split(".")[-1],
            "num_processes": cfg.num_processes,
            "mixed_precision": str(cfg.mixed_precision),
            "deepspeed_config": cfg.deepspeed_config,
            "fsdp_config": cfg.fsdp_config,
        }
    ds_file = out["deepspeed-zero2.yaml"]["deepspeed_config"]["deepspeed_config_file"]
    plugin = DeepSpeedPlugin(hf_ds_config=ds_file)
    plugin.set_mixed_precision("no")
    ds = plugin.deepspeed_config
    out["deepspeed"] = {"zero_stage": plugin.zero_stage, "gradient_accumulation_steps": ds["gradient_accumulation_steps"], "gradient_clipping": ds.get("gradient_clipping"), "fp16": ds["fp16"]}
    # DeepSpeed's own validation, with the batch layout train.py writes in (2 rows per process; one process here).
    from deepspeed.runtime.config import DeepSpeedConfig

    resolved = json.loads(json.dumps(ds))
    resolved["train_micro_batch_size_per_gpu"] = 2
    resolved["train_batch_size"] = 2 * resolved["gradient_accumulation_steps"]
    resolved["bf16"] = {"enabled": False}
    resolved["fp16"]["enabled"] = False
    dsc = DeepSpeedConfig(resolved)
    out["deepspeed"]["validated"] = {"zero_stage": dsc.zero_optimization_stage, "train_batch_size": dsc.train_batch_size, "gradient_clipping": dsc.gradient_clipping}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
