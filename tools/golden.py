"""Regenerates the golden corpus (dsd/testdata/golden): small DCP checkpoints saved by each
pinned environment's torch, in each layout of dsd/golden/layouts.py, at 2 ranks (and fsdp2 at
4), each with a golden.json (torch version and git version, layout, world size, checksums of
the values a load must reproduce), and the corpus manifest.

    python3 tools/golden.py [--envs torch2_13,torch2_14]

Runs dsd/golden/write_goldens.py through the launcher, on CPU ranks, with each environment's
interpreter (./bazelw python --env NAME, which installs it if needed). Replaces the named
environments' goldens; keep a released torch's goldens forever, add a new release's. Stdlib only.
"""

import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "dsd", "testdata", "golden")
RUNS = ((2, ""), (4, "fsdp2,-fsdp2_"))  # (world size, test filter): fsdp2 also saved at 4 ranks


def pinned_envs():
    return sorted(os.path.basename(p)[:-len(".lock")] for p in glob.glob(os.path.join(ROOT, "third_party", "envs", "*.lock")))


def write(env, out):
    for world_size, test_filter in RUNS:
        cmd = [os.path.join(ROOT, "bazelw"), "python", "--env", env, "-m", "testing.launcher",
               "--test_module=dsd.golden.write_goldens", f"--world_size={world_size}", "--device=cpu",
               f"--test_filter={test_filter}", f"--output_dir={out}/logs-ws{world_size}"]
        proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, DSD_GOLDEN_DIR=out), capture_output=True, text=True)
        print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:])
        if proc.returncode:
            raise SystemExit(f"{env}: writing goldens at {world_size} ranks failed:\n{proc.stdout[-4000:]}")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default=",".join(pinned_envs()))
    args = p.parse_args(argv)
    os.makedirs(CORPUS, exist_ok=True)
    for env in args.envs.split(","):
        tmp = tempfile.mkdtemp(prefix=f"dsd-golden-{env}-")
        write(env, tmp)
        target = os.path.join(CORPUS, env)
        shutil.rmtree(target, ignore_errors=True)
        for golden in sorted(glob.glob(os.path.join(tmp, "*", "golden.json"))):
            shutil.copytree(os.path.dirname(golden), os.path.join(target, os.path.basename(os.path.dirname(golden))))
        shutil.rmtree(tmp)
    goldens = {}
    for path in sorted(glob.glob(os.path.join(CORPUS, "*", "*", "golden.json"))):
        with open(path) as f:
            golden = json.load(f)
        name = os.path.relpath(os.path.dirname(path), CORPUS).replace("/", "_")
        size = sum(os.path.getsize(f) for f in glob.glob(os.path.join(os.path.dirname(path), "*")))
        goldens[name] = {"layout": golden["layout"], "world_size": golden["world_size"], "bytes": size,
                         "torch": golden["saved_with"]["torch"], "git_version": golden["saved_with"]["git_version"]}
    environments = sorted({name.split("_")[0] + "_" + name.split("_")[1] for name in goldens})
    with open(os.path.join(CORPUS, "manifest.json"), "w") as f:
        json.dump({"generated_by": "tools/golden.py", "date": datetime.date.today().isoformat(),
                   "environments": environments, "goldens": goldens}, f, indent=1, sort_keys=True)
    total = sum(g["bytes"] for g in goldens.values())
    print(f"{len(goldens)} goldens, {total // 1024} KiB, in {os.path.relpath(CORPUS, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
