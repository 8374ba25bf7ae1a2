"""A stand-in scenario module for tools/history's tests: read with ast (known_bugs.marks), never
imported or run. Its marks are those the fixture history's cases match."""

from testing.known_failures import known_failure
from testing.known_failures import known_wrong_result


class MetadataPickleTest:

    @known_wrong_result("DCP reads .metadata with plain pickle.load on every rank", wrong=[0, 1], right=[])
    def test_metadata_pickle_runs_code(self):
        pass

    def test_metadata_pickle_refused(self):
        pass


class StoragePathTest:

    @known_failure(ValueError, "outside the checkpoint", "FileSystemReader follows .. in storage paths",
                   raised_in="torch/distributed/checkpoint/filesystem.py:read_data", torch_versions=("2.14",))
    def test_dotdot_storage_paths(self):
        pass
