"""Prints the test targets that a git change can affect, one label a line.

    ./bazelw run //tools:affected -- --base origin/main [--head HEAD]
    python3 tools/affected.py --base origin/main            (plain script, stdlib only)

Without --head the working tree is compared, uncommitted and untracked files included.
Hash-based, like bazel-diff and target-determinator: for base and head, `bazel query
'//...:*' --output=streamed_proto --proto:include_synthetic_attribute_hash` lists every
target without a dependency walk (works offline); each target gets a transitive hash from
its rule's $internal_attr_hash (attributes, macro expansion included, and rule definition),
its in-repo inputs' hashes, and source file contents plus executable bit (a marker for a
missing file). Affected = test targets that are new or whose hash changed. An environment's
lock (third_party/envs/<env>.lock) is a data dependency of that environment's targets only,
through select(), so changing it selects those targets and the cross-version ones that involve
it. Changes to global inputs (WORKSPACE, MODULE.bazel, .bazelrc*, .bazelversion, bazelw, the
repository rules and what they run, any .bzl not loaded by a BUILD file) or a failed query
select every test.
The base tree is checked out with `git worktree` under the cache dir; the user's tree is
never touched. Only *_test rules are printed, never test_suites or `manual` targets.
"""

import argparse
import contextlib
import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import time

# Files whose change can affect any target (relative to the workspace root).
GLOBAL_PATTERNS = (
    "WORKSPACE", "WORKSPACE.bazel", "WORKSPACE.bzlmod", "MODULE.bazel", "MODULE.bazel.lock",
    ".bazelrc", ".bazelrc.*", "*.bazelrc", ".bazelversion", "bazelw", "tools/bazel",
    # Repository rules and what they run: they make the environments and host tools.
    "third_party/*.bzl", "third_party/envs/envs.bzl", "third_party/envs/install.py",
    "third_party/host_tools.py", "third_party/requirements-remote-proof.txt",
    "third_party/remote_coverage_tools/*",
    # The toolchain's interpreter runs every Python test.
    "third_party/base_python.sh",
)
_RULE, _SOURCE, _GENERATED = 1, 2, 3


class QueryError(RuntimeError):
    pass


def log(msg):
    print(f"affected: {msg}", file=sys.stderr, flush=True)


# ---- a minimal protobuf wire-format reader (build.proto Target messages) ----------------
# Hand-written, not the protobuf package: it decodes only with code generated from Bazel's
# build.proto by protoc, which this stdlib tool would have to build at run time; and Bazel 4.2.3
# has no --output=jsonproto. These lines read the five fields the selection needs.

def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    """Yields (field number, value): int for varints, bytes for length-delimited fields."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise QueryError(f"unsupported protobuf wire type {wire}")
        yield field, value


def parse_targets(data):
    """{label: target} from `--output=streamed_proto` (varint-delimited Target messages).

    target: {"kind": "rule", "class", "attr_hash", "inputs", "tags"}
            {"kind": "source"} | {"kind": "generated", "rule"}
    """
    targets = {}
    pos = 0
    while pos < len(data):
        n, pos = _varint(data, pos)
        message, pos = data[pos:pos + n], pos + n
        fields = dict(_fields(message))  # type=1, rule=2, source_file=3, generated_file=4
        kind = fields.get(1)
        if kind == _RULE:
            rule = {"kind": "rule", "class": "", "attr_hash": "", "inputs": [], "tags": []}
            for f, v in _fields(fields[2]):
                if f == 1:
                    name = v.decode()
                elif f == 2:
                    rule["class"] = v.decode()
                elif f == 5:  # rule_input
                    rule["inputs"].append(v.decode())
                elif f == 4:  # attribute
                    attr = {"strings": []}
                    for af, av in _fields(v):
                        if af == 1:
                            attr["name"] = av.decode()
                        elif af == 5:
                            attr["string"] = av.decode()
                        elif af == 6:
                            attr["strings"].append(av.decode())
                    if attr.get("name") == "$internal_attr_hash":
                        rule["attr_hash"] = attr.get("string", "")
                    elif attr.get("name") == "tags":
                        rule["tags"] = attr["strings"]
            targets[name] = rule
        elif kind == _SOURCE:
            targets[dict(_fields(fields[3]))[1].decode()] = {"kind": "source"}
        elif kind == _GENERATED:
            gen = dict(_fields(fields[4]))
            targets[gen[1].decode()] = {"kind": "generated", "rule": gen[2].decode()}
    return targets


# ---- bazel and git ---------------------------------------------------------------------

def bazel_query(bazel, workspace, expression, *flags, startup=()):
    cmd = [bazel, *startup, "query", expression, "--keep_going=false", "--noshow_progress", *flags]
    proc = subprocess.run(cmd, cwd=workspace, capture_output=True)
    if proc.returncode != 0:
        raise QueryError(f"`{' '.join(cmd)}` in {workspace} failed:\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return proc.stdout


def query_workspace(bazel, workspace, startup=()):
    """(targets, paths of the .bzl files that BUILD files load) of one tree."""
    data = bazel_query(bazel, workspace, "//...:*", "--output=streamed_proto",
                       "--proto:include_synthetic_attribute_hash", "--proto:locations=false",
                       "--proto:default_values=false", startup=startup)
    build_files = bazel_query(bazel, workspace, "buildfiles(//...)", "--output=label", startup=startup)
    loaded = {label_path(label) for label in build_files.decode().split() if label.startswith("//")}
    return parse_targets(data), {p for p in loaded if p.endswith(".bzl")}


def label_path(label):
    pkg, _, name = label[2:].partition(":")
    return f"{pkg}/{name}" if pkg else name


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def changed_files(repo, base, head):
    """Paths changed between base and head (head None: the working tree, untracked too)."""
    if head is None:
        files = git(repo, "diff", "--name-only", "--no-renames", base).split()
        files += git(repo, "ls-files", "--others", "--exclude-standard").split()
    else:
        files = git(repo, "diff", "--name-only", "--no-renames", base, head).split()
    return sorted(set(files))


class Worktree:
    """`rev` checked out at a stable path under the cache dir (so its Bazel server is reused)."""

    def __init__(self, repo, rev, name):
        self.repo, self.rev = repo, rev
        cache = os.environ.get("DSD_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dsd-bazel")
        key = hashlib.sha256(os.path.realpath(repo).encode()).hexdigest()[:12]
        self.path = os.path.join(cache, "affected", key, name)

    def __enter__(self):
        if os.path.exists(self.path):
            subprocess.run(["git", "worktree", "remove", "--force", self.path], cwd=self.repo, capture_output=True)
            shutil.rmtree(self.path, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=self.repo, capture_output=True)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        git(self.repo, "worktree", "add", "--detach", "--force", self.path, self.rev)
        for rc in (".bazelrc.env", "user.bazelrc"):  # machine-local, git-ignored
            if os.path.exists(os.path.join(self.repo, rc)):
                shutil.copy(os.path.join(self.repo, rc), os.path.join(self.path, rc))
        return self.path

    def __exit__(self, *exc):
        subprocess.run(["git", "worktree", "remove", "--force", self.path], cwd=self.repo, capture_output=True)


# ---- hashing ---------------------------------------------------------------------------

def file_digest(workspace, path):
    full = os.path.join(workspace, path)
    if not os.path.isfile(full):
        return "missing"
    h = hashlib.sha256()
    with open(full, "rb") as f:
        h.update(f.read())
    h.update(b"x" if os.access(full, os.X_OK) else b"-")
    return h.hexdigest()


def target_hashes(targets, workspace):
    """{label: transitive hash} for every in-repo target."""
    memo = {}

    def visit(label, stack):
        if label in memo:
            return memo[label]
        target = targets.get(label)
        if target is None:  # external repository or not a target of this tree: its name
            return "ext:" + label
        if label in stack:
            return "cycle:" + label
        stack.add(label)
        h = hashlib.sha256(label.encode())
        if target["kind"] == "source":
            h.update(file_digest(workspace, label_path(label)).encode())
        elif target["kind"] == "generated":
            h.update(visit(target["rule"], stack).encode())
        else:
            h.update(target["class"].encode() + b"\0" + target["attr_hash"].encode())
            for dep in sorted(target["inputs"]):
                h.update(visit(dep, stack).encode())
        stack.discard(label)
        memo[label] = h.hexdigest()
        return memo[label]

    for label in targets:
        visit(label, set())
    return memo


def is_test(target):
    return target["kind"] == "rule" and target["class"].endswith("_test") and "manual" not in target["tags"]


def tag_filter(tags, spec):
    """Bazel's --test_tag_filters: any positive tag required (if given), no negative tag."""
    wanted = [t for t in spec.split(",") if t and not t.startswith("-")]
    banned = [t[1:] for t in spec.split(",") if t.startswith("-")]
    return not any(t in tags for t in banned) and (not wanted or any(t in tags for t in wanted))


def global_reason(files, loaded_bzl):
    for path in files:
        if any(fnmatch.fnmatch(path, p) for p in GLOBAL_PATTERNS):
            return f"{path} is a global input"
        if path.endswith(".bzl") and path not in loaded_bzl:
            return f"{path} is a .bzl file no BUILD file loads (repository rule, extension, ...)"
    return None


def affected(repo, base, head, bazel, tag_filters=""):
    """(sorted affected test labels, why everything was selected or None)."""
    files = changed_files(repo, base, head)
    startup = ("--max_idle_secs=300",)
    with contextlib.ExitStack() as stack:
        if head is None:  # the working tree, with the user's own Bazel server
            head_root = repo
            head_targets, head_bzl = query_workspace(bazel, repo)
        else:
            head_root = stack.enter_context(Worktree(repo, head, "head"))
            head_targets, head_bzl = query_workspace(bazel, head_root, startup)
        base_root = stack.enter_context(Worktree(repo, base, "base"))
        tests = {label: t for label, t in head_targets.items() if is_test(t) and tag_filter(t["tags"], tag_filters)}
        try:
            base_targets, base_bzl = query_workspace(bazel, base_root, startup)
        except QueryError as e:
            return sorted(tests), f"the base query failed ({str(e).splitlines()[0]})"
        everything = global_reason(files, head_bzl | base_bzl)
        if everything:
            return sorted(tests), everything
        head_hashes = target_hashes(head_targets, head_root)
        base_hashes = target_hashes(base_targets, base_root)
    return sorted(label for label in tests if head_hashes[label] != base_hashes.get(label)), None


def find_bazel():
    for candidate in (os.environ.get("BAZEL"), os.environ.get("BAZEL_REAL"), shutil.which("bazel"),
                      shutil.which("bazelisk")):
        if candidate:
            return candidate
    raise SystemExit("affected: no Bazel found (set BAZEL or put bazel on PATH)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="git revision to compare against (e.g. origin/main)")
    p.add_argument("--head", help="git revision of the change; default: the working tree")
    p.add_argument("--tag_filters", default="", help="like --test_tag_filters, e.g. gpu2 or -gpu4")
    p.add_argument("--format", choices=("labels", "bazel-args"), default="labels",
                   help="labels: one a line; bazel-args: one line for `bazel test $(...)`")
    p.add_argument("--target_pattern_file", help="write the labels here and print --target_pattern_file=PATH")
    p.add_argument("--bazel", help="Bazel binary (default: $BAZEL, $BAZEL_REAL, bazel on PATH)")
    p.add_argument("--repo", default=os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd(),
                   help="the git checkout (default: the workspace `bazel run` was started in)")
    args = p.parse_args(argv)
    repo = git(args.repo, "rev-parse", "--show-toplevel").strip()
    start = time.monotonic()
    try:
        labels, everything = affected(repo, args.base, args.head, args.bazel or find_bazel(), args.tag_filters)
    except QueryError as e:
        raise SystemExit(f"affected: {e}")
    if everything:
        log(f"selecting every test target: {everything}")
    log(f"{len(labels)} test target(s) affected, compared {args.base}..{args.head or 'working tree'} "
        f"in {time.monotonic() - start:.1f}s")
    if not labels:
        log("no test target is affected by this change")
        return 0
    if args.target_pattern_file:
        with open(args.target_pattern_file, "w") as f:
            f.writelines(label + "\n" for label in labels)
        print(f"--target_pattern_file={os.path.abspath(args.target_pattern_file)}")
    elif args.format == "bazel-args":
        print(" ".join(labels))
    else:
        print("\n".join(labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
