"""NCCL's flight recorder for CUDA launches: armed in every rank, dumped before a hung launch is
killed. Not verified on a GPU here (the device tool lends one only to some tasks).

Each rank keeps its last collectives (TORCH_NCCL_TRACE_BUFFER_SIZE / TORCH_FR_BUFFER_SIZE) and
dumps them into <attempt dir>/nccl_flight_recorder/rank_<R> on its own NCCL timeout
(TORCH_NCCL_DUMP_ON_TIMEOUT) or when the launcher writes to its debug pipe
(TORCH_NCCL_DEBUG_INFO_PIPE_FILE). The pipes live outside the outputs (zip skips FIFOs).
"""

import glob
import os
import time

_ENTRIES = "2000"
_WAIT = 10.0


class FlightRecorder:

    def __init__(self, attempt_dir, pipe_dir):
        self.dump_dir = os.path.join(attempt_dir, "nccl_flight_recorder")
        self.pipe_dir = pipe_dir

    def env(self):
        """The ranks' settings (a value the user set wins)."""
        os.makedirs(self.dump_dir, exist_ok=True)
        os.makedirs(self.pipe_dir, exist_ok=True)
        dump = os.path.join(self.dump_dir, "rank_")
        env = {"TORCH_NCCL_TRACE_BUFFER_SIZE": _ENTRIES, "TORCH_FR_BUFFER_SIZE": _ENTRIES,
               "TORCH_NCCL_DUMP_ON_TIMEOUT": "1", "TORCH_NCCL_DEBUG_INFO_TEMP_FILE": dump,
               "TORCH_FR_DUMP_TEMP_FILE": dump, "TORCH_NCCL_DEBUG_INFO_PIPE_FILE": os.path.join(self.pipe_dir, "rank_")}
        return {k: v for k, v in env.items() if k not in os.environ}

    def dump(self, ranks):
        """Asks `ranks` for their dump through the pipe each rank's NCCL watchdog reads, and waits
        a little for the files."""
        asked = [rank for rank in ranks if self._ask(rank)]
        deadline = time.time() + (_WAIT if asked else 0)
        while time.time() < deadline and len(glob.glob(os.path.join(self.dump_dir, "rank_*"))) < len(asked):
            time.sleep(0.2)

    def _ask(self, rank):
        try:
            fd = os.open(os.path.join(self.pipe_dir, f"rank_{rank}.pipe"), os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return False  # no pipe (an older torch, or NCCL not initialised yet)
        try:
            os.write(fd, b"1\n")
            return True
        except OSError:
            return False
        finally:
            os.close(fd)
