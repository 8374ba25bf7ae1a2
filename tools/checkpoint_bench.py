"""What a checkpoint costs per torch release, side by side in one run: time, throughput and peak
memory of dcp.save, dcp.load, async_save, HF save with consolidation, dcp_to_torch_save and a
resharding load, for a state of a stated size, under every pinned environment.

    python3 tools/checkpoint_bench.py [--envs torch2_13,torch2_14] [--mb 256] [--repeats 3]
                                      [--world_size 2] [--reshard_to 4] [--write]

Per environment: one launch of --world_size ranks (testing.launcher.rank_group) runs the save
phase of tools/checkpoint_bench_ranks.py, a second of --reshard_to ranks loads that checkpoint.
Prints one table: per operation and environment the median time [min-max over repeats], the
throughput (the state's bytes over the median time) and the largest rank's peak memory above
its RSS at the start, in multiples of its local share of the state (of the whole state for
dcp_to_torch_save, which one process runs); then the ratios of the last environment to the
first. --write keeps the results (tools/checkpoint_cost.json: machine, commit, date) and puts
the table into README.md. A benchmark to read, not a timed test: nothing is asserted. Stdlib only.
"""

import argparse
import collections
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from third_party.envs import catalog  # noqa: E402
from tools import readme  # noqa: E402

RESULTS = os.path.join(ROOT, "tools", "checkpoint_cost.json")
OPS = ("save", "load", "async_save", "hf_save_consolidated", "dcp_to_torch_save", "reshard_load")


def launch(env, nproc, phase, args, work, out):
    cmd = [os.path.join(ROOT, "bazelw"), "python", "--env", env, "-m", "testing.launcher.rank_group",
           f"--nproc={nproc}", f"--report={work}/ranks-{phase}.json", f"--log_dir={work}/logs-{phase}", "--",
           "-m", "tools.checkpoint_bench_ranks", f"--phase={phase}", f"--mb={args.mb}",
           f"--repeats={args.repeats}", f"--dir={work}", f"--out={out}", f"--device={args.device}"]
    env_vars = dict(os.environ, OMP_NUM_THREADS="1")
    if subprocess.run(cmd, cwd=ROOT, env=env_vars).returncode:
        raise SystemExit(f"{env}: the {phase} phase failed; rank logs in {work}/logs-{phase}")


def run_env(env, args):
    with tempfile.TemporaryDirectory(prefix=f"checkpoint-bench-{env}-") as work:
        out = os.path.join(work, "records.jsonl")
        launch(env, args.world_size, "save", args, work, out)
        launch(env, args.reshard_to, "reshard", args, work, out)
        with open(out) as f:
            return [json.loads(line) for line in f]


def summarise(records):
    """{op: {"seconds": [per repeat], "state_bytes": total, "peak_x": max over ranks and repeats}}."""
    by_op = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in records:
        by_op[r["op"]][r["repeat"]].append(r)
    out = {}
    for op, repeats in by_op.items():
        ranks = [rank for rs in repeats.values() for rank in rs]
        state = sum(r["local_bytes"] for r in repeats[0]) if op != "dcp_to_torch_save" else ranks[0]["local_bytes"]
        out[op] = {"seconds": [max(r["seconds"] for r in rs) for rs in repeats.values()], "state_bytes": state,
                   "peak_x": max(r["peak_bytes"] / r["local_bytes"] for r in ranks),
                   "torch": ranks[0]["torch"], "world_size": ranks[0]["world_size"]}
    return out


def table(results):
    envs = list(results["envs"])
    head = "| operation | " + " | ".join(f"`{e}` (torch {results['envs'][e]['save']['torch']})" for e in envs)
    lines = [head + (f" | `{envs[-1]}` / `{envs[0]}` |" if len(envs) > 1 else " |"),
             "|---" * (len(envs) + 1 + (len(envs) > 1)) + "|"]
    for op in OPS:
        cells = []
        for e in envs:
            s = results["envs"][e].get(op)
            if not s:
                cells.append("n/a")
                continue
            med = statistics.median(s["seconds"])
            cells.append(f"{med:.2f} s [{min(s['seconds']):.2f}-{max(s['seconds']):.2f}], "
                         f"{s['state_bytes'] / 2**20 / med:.0f} MiB/s, peak {s['peak_x']:.2f}x")
        first, last = results["envs"][envs[0]].get(op), results["envs"][envs[-1]].get(op)
        ratio = (f" | time {statistics.median(last['seconds']) / statistics.median(first['seconds']):.2f}x, "
                 f"peak {last['peak_x'] / first['peak_x']:.2f}x" if len(envs) > 1 and first and last and first["peak_x"]
                 else (" | n/a" if len(envs) > 1 else ""))
        ws = results["envs"][envs[0]].get(op, {}).get("world_size", "")
        lines.append(f"| {op} ({ws} ranks) | " + " | ".join(cells) + ratio + " |")
    return "\n".join(lines)


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor())
    return f"{model}, {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default=",".join(catalog.pinned_scenario_envs()), help="comma-separated environments")
    p.add_argument("--mb", type=float, default=256, help="the whole state in MiB (default 256)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--world_size", type=int, default=2)
    p.add_argument("--reshard_to", type=int, default=4, help="world size of the resharding load (default 4)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--write", action="store_true", help=f"keep the results for the README ({os.path.relpath(RESULTS, ROOT)})")
    args = p.parse_args(argv)
    started = time.time()
    results = {"envs": {}, "mb": args.mb, "repeats": args.repeats, "machine": machine(), "device": args.device,
               "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True).stdout.strip(),
               "date": datetime.date.today().isoformat()}
    for env in args.envs.split(","):
        results["envs"][env] = summarise(run_env(env, args))
    results.update(seconds=round(time.time() - started), world_size=args.world_size, reshard_to=args.reshard_to)
    print(render(results))
    if args.write:
        with open(RESULTS, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
            f.write("\n")
        readme.write({"checkpoint-cost": render(results)})
    return 0


def render(results):
    """The table and what it measured (the README's checkpoint-cost section; tools/catalogue.py
    checks that README shows the recorded results)."""
    return (table(results) + "\n\n" +
            f"{results['mb']:.0f} MiB of state (parameters + Adam moments), FSDP2 over {results['world_size']} ranks, "
            f"resharding load at {results['reshard_to']}; {results['repeats']} repeats, median [min-max]; peak = the "
            f"largest rank's memory above its RSS at the start, in multiples of its local share (dcp_to_torch_save: "
            f"of the whole state). {results['machine']}, {results['device']}; measured at commit {results['commit']} on "
            f"{results['date']} by `python3 tools/checkpoint_bench.py --write` in {results['seconds']} s.")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
