"""The launcher's view of one launch's records (protocol.py), read incrementally: each poll
parses only the lines the ranks appended since the last one.

    view = LaunchRecords(attempt_dir, world_size)
    view.update()                       # after the ranks wrote more
    view.plans, view.finished, view.units, view.last_time, view.last_unit(rank)
"""

import json
import os


class RankFile:
    """One rank's record file: new complete lines since the last read (a torn last line, from a
    rank killed mid-write, waits for its end and is never parsed half)."""

    def __init__(self, path):
        self.path, self._offset, self._partial = path, 0, b""

    def new_records(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


class Unit:
    """What the ranks recorded of one unit: its kind, and each rank's start and end record."""

    def __init__(self, kind):
        self.kind, self.starts, self.ends = kind, {}, {}

    @property
    def first_start(self):
        return min(s["t"] for s in self.starts.values())


class LaunchRecords:
    """Every rank's records of one launch, and the views the watchdog and attribution need."""

    def __init__(self, attempt_dir, world_size):
        self.world_size = world_size
        self.files = {rank: RankFile(os.path.join(attempt_dir, f"rank{rank}.jsonl")) for rank in range(world_size)}
        self.plans = dict.fromkeys(range(world_size))   # rank: its plan record (None until it planned)
        self.finished = set()                             # ranks that recorded "done"
        self.units = {}                                   # unit id: Unit, in first-start order
        self.last_end = {}                                # rank: the unit it last ended
        self.last_time = None                             # time of the newest record of any rank

    def update(self):
        for rank, rank_file in self.files.items():
            for record in rank_file.new_records():
                self._add(rank, record)
        return self

    def _add(self, rank, record):
        event = record["event"]
        self.last_time = max(self.last_time or record["t"], record["t"])
        if event == "plan":
            self.plans[rank] = record
        elif event == "done":
            self.finished.add(rank)
        elif event in ("start", "end"):
            unit = self.units.setdefault(record["unit"], Unit(record["kind"]))
            (unit.starts if event == "start" else unit.ends)[rank] = record
            if event == "end":
                self.last_end[rank] = record["unit"]

    def all_planned(self):
        return all(self.plans.values())

    def open_units(self):
        return {uid: u for uid, u in self.units.items() if len(u.ends) < self.world_size}

    def last_unit(self, rank):
        return self.last_end.get(rank)
