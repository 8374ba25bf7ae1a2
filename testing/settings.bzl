"""The device build settings (bazel_skylib's common_settings) and the config_settings
testing/defs.bzl selects on; see testing/BUILD.bazel."""

load("@bazel_skylib//rules:common_settings.bzl", "int_flag", "string_flag")

def device_settings(max_gpus = 8):
    """//testing:device (auto, cpu, cuda: --config=cpu|gpu), //testing:visible_gpus (./bazelw
    writes the host's GPU count) and their config_settings."""
    string_flag(name = "device", build_setting_default = "auto", values = ["auto", "cpu", "cuda"])
    int_flag(name = "visible_gpus", build_setting_default = 0)
    native.config_setting(name = "device_cpu", flag_values = {":device": "cpu"})
    native.config_setting(name = "device_cuda", flag_values = {":device": "cuda"})
    for n in range(1, max_gpus + 1):
        native.config_setting(
            name = "auto_with_%d_gpus" % n,
            flag_values = {":device": "auto", ":visible_gpus": str(n)},
        )
