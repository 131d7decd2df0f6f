"""Reads the launch commands the studio shows for a bundle the way `accelerate launch` and train.py read them.

argv[1]: the bundle folder; argv[2]: a JSON list of commands (as common/bundle-launch.ts launchCommand writes them).
Each is split like a shell would, parsed by accelerate's own `accelerate launch` argument parser, its config file
loaded by accelerate's config reader, and the arguments after train.py parsed by the bundle's train.py. Prints one
JSON list with what each command asks for.
"""
import json
import os
import shlex
import sys

from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import launch_command_parser


def main():
    bundle = sys.argv[1]
    commands = json.loads(sys.argv[2])
    os.chdir(bundle)
    sys.path.insert(0, bundle)
    import train  # the bundle's own train.py (its heavy imports are inside main)

    parser = launch_command_parser()
    out = []
    for command in commands:
        words = shlex.split(command)
        if words[:2] != ["accelerate", "launch"]:
            raise SystemExit(f"not an accelerate launch command: {command}")
        args = parser.parse_args(words[2:])
        cfg = load_config_from_file(args.config_file)
        script = train.parse_args(args.training_script_args)
        out.append(
            {
                "command": command,
                "config_file": args.config_file,
                "distributed_type": str(cfg.distributed_type).split(".")[-1],
                # --num_processes on the line wins over the file's default, as accelerate launch does.
                "num_processes": args.num_processes if args.num_processes is not None else cfg.num_processes,
                "training_script": args.training_script,
                "dropout": script.dropout,
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
