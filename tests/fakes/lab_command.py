"""A lab's inference script, as the `command` adapter runs one (standard library only, so it
runs with `sys.executable` from anywhere).

    lab_command.py MODE INPUT OUTPUT [--transcript PATH] [--label TEXT] [--record PATH]
                   [--pidfile PATH]

MODE: "copy" (the answer is the prompt itself, plus a transcript and a model_version line),
"fail" (30 lines on stderr, exit 3), "tempfail" (exit 75), "no_output" (exit 0, writes nothing)
or "hang" (starts a grandchild `sleep 30`, writes its pid to --pidfile, sleeps).
--record writes what the script saw (argv, cwd, paths, LAB_GREETING) as JSON before anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["copy", "fail", "tempfail", "no_output", "hang"])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--transcript")
    parser.add_argument("--label", default="")
    parser.add_argument("--record")
    parser.add_argument("--pidfile")
    args = parser.parse_args()
    if args.record:
        with open(args.record, "w") as file:
            json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "input": args.input,
                       "output": args.output, "greeting": os.environ.get("LAB_GREETING")}, file)

    if args.mode == "copy":
        print("loading checkpoint ...")
        print("model_version=lab-cmd-1", flush=True)
        shutil.copyfile(args.input, args.output)
        if args.transcript:
            with open(args.transcript, "w") as file:
                file.write(f"  answer to {args.label}\n")
        return 0
    if args.mode == "fail":
        for i in range(30):
            print(f"log line {i}", file=sys.stderr)
        print("RuntimeError: the checkpoint is missing", file=sys.stderr)
        return 3
    if args.mode == "tempfail":
        print("the GPU is busy", file=sys.stderr)
        return 75
    if args.mode == "no_output":
        return 0
    child = subprocess.Popen(["sleep", "30"])
    with open(args.pidfile, "w") as file:
        file.write(str(child.pid))
    time.sleep(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
