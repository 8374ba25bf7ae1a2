"""One phase of a target: the launches at one world size (and in one environment) until every
planned case has a verdict. A launch that ended early (a crash, a hang, a failed fixture on some
rank) is followed by a fresh one for the cases left; a launch that made no progress, or the
target's time limit, ends the phase with the cases left reported `not run`. With
--flaky_reruns=N (off by default) the failed cases then run again, in up to N fresh launches of
their own: a case that passes there is FLAKY, its first failure kept; one that fails again
stays failed.
"""

import os

from testing.launcher import attribution
from testing.launcher.launch import Launch
from testing.launcher.protocol import CASE
from testing.launcher.protocol import Status
from testing.launcher.verdict import Result
from testing.launcher.verdict import flaky


class Phase:
    """output_dir: this phase's outputs (attempt<K>/, failures/); outputs_root: the target's, which
    failure artefacts are named relative to; artifacts_limit: bytes of a failed case's scratch
    directory to keep; log: where results and notes go as they become known."""

    def __init__(self, config, output_dir, log, outputs_root=None, artifacts_limit=20 * 1024 * 1024):
        self.config, self.spec = config, config.spec
        self.output_dir, self.outputs_root = output_dir, outputs_root or output_dir
        self.artifacts_limit, self.log = artifacts_limit, log
        self.results = []   # Results, in the order they became known
        self.plan = None    # plan.Plan of this shard (from the first launch's plan records)
        self.torch = {}     # the ranks' torch build (from the plan record)
        self.launches = []

    def case_results(self):
        return {r.id: r for r in self.results if r.kind == CASE}

    def remaining(self):
        have = self.case_results()
        return [c for c in (self.plan.cases if self.plan else []) if c not in have]

    def add(self, result):
        self.results.append(result)
        self.log(result)

    def run(self):
        while True:
            before = len(self.case_results())
            launch = Launch(self.config, os.path.join(self.output_dir, f"attempt{len(self.launches)}"),
                            already_run=list(self.case_results()))
            self.launches.append(launch)
            try:
                launch.run()
            finally:
                attribution.collect(self, launch)
            if self.plan is None or not self.remaining() or self._stopped(launch, before):
                return
            self.log(f"-- relaunching for the {len(self.remaining())} remaining case(s) (attempt {len(self.launches)})")

    def rerun_failures(self, reruns):
        """Reruns the failed cases (see the module docstring); a rerun launch that itself went
        wrong outside its cases proves nothing, and its passes are not taken."""
        for attempt in range(1, reruns + 1):
            failed = {r.id: r for r in self.results if r.kind == CASE and r.status.failing}
            if not failed or self.plan is None or self.spec.fail_fast:
                return
            self.log(f"-- rerunning {len(failed)} failed case(s) in a fresh launch (rerun {attempt} of {reruns})")
            rerun = Phase(self.config, self.output_dir, lambda item: None, self.outputs_root, self.artifacts_limit)
            launch = Launch(self.config, os.path.join(self.output_dir, f"rerun{attempt}"),
                            already_run=[c for c in self.plan.cases if c not in failed])
            self.launches.append(launch)
            try:
                launch.run()
            finally:
                attribution.collect(rerun, launch)
            if any(r.status.failing and r.kind != CASE for r in rerun.results):
                continue
            passed = {r.id for r in rerun.results if r.kind == CASE and r.status is Status.PASSED}
            self.results = [flaky(r, attempt) if r.id in passed and r.kind == CASE and r.status.failing else r
                            for r in self.results]
            for case in sorted(passed & set(failed)):
                self.log(f"[FLAKY ] {case}  failed, then passed on rerun {attempt}")

    def _stopped(self, launch, before):
        """True (after reporting the cases left) when no further launch may run."""
        left = self.remaining()
        failed = [r for r in self.case_results().values() if r.status.failing]
        if self.spec.fail_fast and failed:
            for case in left:
                self.add(Result(case, Status.SKIPPED, f"not run: --test_runner_fail_fast after {failed[0].id} failed"))
            return True
        if len(self.case_results()) == before or (launch.kill_reason and "time limit" in launch.kill_reason):
            why = launch.kill_reason or "the launch made no progress"
            for case in left:
                self.add(Result(case, Status.ERROR, f"not run: {why}"))
            return True
        return False
