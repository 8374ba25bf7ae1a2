"""Build settings without bazel_skylib: bool, string and int flags (--//pkg:name=value)."""

def _impl(ctx):
    return []

bool_flag = rule(implementation = _impl, build_setting = config.bool(flag = True))

string_flag = rule(implementation = _impl, build_setting = config.string(flag = True))

int_flag = rule(implementation = _impl, build_setting = config.int(flag = True))


def device_settings(max_gpus = 8):
    """//testing:device (auto, cpu, cuda), //testing:visible_gpus and the config_settings
    testing/defs.bzl selects on; see testing/BUILD.bazel."""
    string_flag(name = "device", build_setting_default = "auto")
    int_flag(name = "visible_gpus", build_setting_default = 0)
    native.config_setting(name = "device_cpu", flag_values = {":device": "cpu"})
    native.config_setting(name = "device_cuda", flag_values = {":device": "cuda"})
    for n in range(1, max_gpus + 1):
        native.config_setting(
            name = "auto_with_%d_gpus" % n,
            flag_values = {":device": "auto", ":visible_gpus": str(n)},
        )
