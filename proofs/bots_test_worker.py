"""TEST DOUBLE: a minimal REAPI worker speaking the Remote Workers (Bots) API.

Not a production worker (no sandboxing, no caching of inputs, one action at a time): it exists
so that the remote-execution proof can run real Bazel actions through a real scheduler
(BuildGrid) on loopback, where no off-the-shelf worker (buildbox) can be installed.

    python bots_test_worker.py --server 127.0.0.1:50071 --instance main --pool gpu2 \
        --name gpu2-worker --work_dir /tmp/w --log /tmp/w.log

It advertises `Pool=<pool>` on its primary device, takes each lease's Action, stages the
input root from CAS, runs the Command, uploads outputs, stdout and stderr, and completes the
lease with the ActionResult. Every executed action is appended to --log as
"EXECUTED <pool> <first argument> <output paths>", which the proof reads.
Runs with the interpreter of a venv that has buildgrid (for its generated protos) and grpcio.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from buildgrid._protos.google.bytestream import bytestream_pb2
from buildgrid._protos.google.bytestream import bytestream_pb2_grpc
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2_grpc
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import worker_pb2
from buildgrid._protos.google.rpc import code_pb2

_CHUNK = 1 << 20
_POLL_SECONDS = 5


class Cas:
    def __init__(self, channel, instance):
        self.instance = instance
        self.cas = re_grpc.ContentAddressableStorageStub(channel)
        self.bytestream = bytestream_pb2_grpc.ByteStreamStub(channel)

    def read(self, digest):
        if digest.size_bytes == 0:
            return b""
        name = f"{self.instance}/blobs/{digest.hash}/{digest.size_bytes}"
        return b"".join(r.data for r in self.bytestream.Read(bytestream_pb2.ReadRequest(resource_name=name)))

    def read_proto(self, digest, message):
        message.ParseFromString(self.read(digest))
        return message

    def write(self, data):
        digest = re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
        if not data:
            return digest
        resource = f"{self.instance}/uploads/{os.urandom(8).hex()}/blobs/{digest.hash}/{digest.size_bytes}"

        def requests():
            for offset in range(0, len(data), _CHUNK):
                chunk = data[offset:offset + _CHUNK]
                yield bytestream_pb2.WriteRequest(resource_name=resource, write_offset=offset, data=chunk,
                                                  finish_write=offset + len(chunk) == len(data))

        self.bytestream.Write(requests())
        return digest


def stage(cas, digest, path):
    """Materialises the Directory `digest` (and everything below it) at `path`."""
    os.makedirs(path, exist_ok=True)
    directory = cas.read_proto(digest, re_pb2.Directory())
    for f in directory.files:
        target = os.path.join(path, f.name)
        with open(target, "wb") as out:
            out.write(cas.read(f.digest))
        os.chmod(target, 0o755 if f.is_executable else 0o644)
    for link in directory.symlinks:
        os.symlink(link.target, os.path.join(path, link.name))
    for d in directory.directories:
        stage(cas, d.digest, os.path.join(path, d.name))


def upload_tree(cas, path):
    """A Tree proto for the directory at `path`, its files uploaded; returns the Tree's digest."""
    children = []

    def directory(p):
        msg = re_pb2.Directory()
        for name in sorted(os.listdir(p)):
            full = os.path.join(p, name)
            if os.path.islink(full):
                msg.symlinks.add(name=name, target=os.readlink(full))
            elif os.path.isdir(full):
                child = directory(full)
                children.append(child)
                msg.directories.add(name=name, digest=cas.write(child.SerializeToString()))
            else:
                with open(full, "rb") as f:
                    msg.files.add(name=name, digest=cas.write(f.read()), is_executable=os.access(full, os.X_OK))
        return msg

    root = directory(path)
    return cas.write(re_pb2.Tree(root=root, children=children).SerializeToString())


def execute(cas, action, work_dir, image_env):
    command = cas.read_proto(action.command_digest, re_pb2.Command())
    root = os.path.join(work_dir, "exec")
    shutil.rmtree(root, ignore_errors=True)
    stage(cas, action.input_root_digest, root)
    cwd = os.path.join(root, command.working_directory)
    outputs = list(command.output_files) + list(command.output_directories)
    for out in outputs:  # REAPI: the worker creates the parents of every output path
        os.makedirs(os.path.dirname(os.path.join(cwd, out)) or cwd, exist_ok=True)
    # What a worker image sets (Docker ENV), under the action's own variables.
    env = dict(image_env, **{v.name: v.value for v in command.environment_variables})
    timeout = action.timeout.seconds or None
    try:
        proc = subprocess.run(list(command.arguments), cwd=cwd, env=env, capture_output=True, timeout=timeout)
        exit_code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        exit_code, stdout, stderr = 124, e.stdout or b"", (e.stderr or b"") + b"\ntest double: timed out\n"
    result = re_pb2.ActionResult(exit_code=exit_code, stdout_digest=cas.write(stdout),
                                 stderr_digest=cas.write(stderr))
    for out in command.output_files:
        full = os.path.join(cwd, out)
        if os.path.isfile(full):
            with open(full, "rb") as f:
                result.output_files.add(path=out, digest=cas.write(f.read()), is_executable=os.access(full, os.X_OK))
    for out in command.output_directories:
        full = os.path.join(cwd, out)
        if os.path.isdir(full):
            result.output_directories.add(path=out, tree_digest=upload_tree(cas, full))
    return command, result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", required=True)
    p.add_argument("--instance", default="main")
    p.add_argument("--pool", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--work_dir", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--image_env", action="append", default=[], metavar="NAME=VALUE",
                   help="an environment variable of the worker image, seen by every action")
    args = p.parse_args(argv)
    channel = grpc.insecure_channel(args.server)
    bots = bots_pb2_grpc.BotsStub(channel)
    cas = Cas(channel, args.instance)
    device = worker_pb2.Device(handle=args.name, properties=[worker_pb2.Device.Property(key="Pool", value=args.pool)])
    session = bots.CreateBotSession(bots_pb2.CreateBotSessionRequest(
        parent=args.instance,
        bot_session=bots_pb2.BotSession(bot_id=args.name, status=bots_pb2.BotStatus.OK,
                                        worker=worker_pb2.Worker(devices=[device]))), timeout=_POLL_SECONDS)
    with open(args.log, "a", buffering=1) as log:
        log.write(f"READY {args.pool} {session.name}\n")
        while True:
            for lease in session.leases:
                if lease.state == bots_pb2.LeaseState.PENDING:
                    lease.state = bots_pb2.LeaseState.ACTIVE
                elif lease.state == bots_pb2.LeaseState.ACTIVE:
                    action = re_pb2.Action()
                    if not lease.payload.Unpack(action):  # a digest instead of the Action itself
                        digest = re_pb2.Digest()
                        lease.payload.Unpack(digest)
                        action = cas.read_proto(digest, re_pb2.Action())
                    command, result = execute(cas, action, args.work_dir, dict(v.split("=", 1) for v in args.image_env))
                    props = ",".join(f"{p.name}={p.value}" for p in action.platform.properties or command.platform.properties)
                    log.write(f"EXECUTED {args.pool} {command.arguments[0]} {' '.join(command.output_files)} "
                              f"platform:{props}\n")
                    lease.result.Pack(result)
                    lease.status.code = code_pb2.OK
                    lease.state = bots_pb2.LeaseState.COMPLETED
            # The server long-polls up to the call's deadline while it has no work for us.
            session = bots.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session),
                                            timeout=_POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
