"""@worker_image: the remote workers' container image, from DSD_WORKER_IMAGE (found, never built).

    DSD_WORKER_IMAGE=docker://REGISTRY/IMAGE@sha256:DIGEST ./bazelw test --config=rbe //dsd/...

The image is built from third_party/Dockerfile and pinned by digest, so that a result names the
image it ran in. Unset, --config=rbe fails at analysis with a message naming the variable
(platforms/pools.bzl), instead of sending a made-up image to the executor.
"""

_DIGEST = "@sha256:"

def _worker_image_impl(rctx):
    image = rctx.os.environ.get("DSD_WORKER_IMAGE", "").strip()
    if image and not (image.startswith("docker://") and _DIGEST in image and
                      len(image.split(_DIGEST)[-1]) == 64):
        fail("DSD_WORKER_IMAGE=%r: expected docker://REGISTRY/IMAGE@sha256:<64 hex digits> " % image +
             "(the digest of your build of third_party/Dockerfile: docker buildx imagetools inspect)")
    rctx.file("BUILD.bazel", 'exports_files(["image.bzl"])\n')
    rctx.file("image.bzl", '"""Written by platforms/worker_image.bzl from DSD_WORKER_IMAGE."""\n\n' +
                           "WORKER_IMAGE = %r\n" % image)

worker_image = repository_rule(
    implementation = _worker_image_impl,
    environ = ["DSD_WORKER_IMAGE"],
    doc = "WORKER_IMAGE in @worker_image//:image.bzl: DSD_WORKER_IMAGE, or \"\" when unset.",
)

def worker_image_repository():
    worker_image(name = "worker_image")
