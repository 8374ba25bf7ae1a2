"""The environments' build settings: one bazel_skylib bool_flag per optional environment
(--//third_party/envs:torch2_14, or --config=all-envs), the config_settings testing/defs.bzl
selects on, and the constraint that makes a disabled environment's targets incompatible.
Apart from envs.bzl, which WORKSPACE loads before any repository exists."""

load("@bazel_skylib//lib:selects.bzl", "selects")
load("@bazel_skylib//rules:common_settings.bzl", "bool_flag")
load(":envs.bzl", "ENVIRONMENTS")

def environment_settings():
    """One flag per optional environment (--//third_party/envs:torch2_14), the config_setting of
    each and a config_setting_group per pair used together (cross-version targets), and the
    constraint that makes a disabled environment's targets incompatible; see BUILD.bazel."""
    optional = sorted([name for name, env in ENVIRONMENTS.items() if not env.always])
    for name in optional:
        bool_flag(name = name, build_setting_default = False)
        native.config_setting(name = name + "_enabled", flag_values = {":" + name: "True"})
    for a in optional:
        for b in optional:
            if a < b:
                selects.config_setting_group(
                    name = "%s_and_%s_enabled" % (a, b),
                    match_all = [":%s_enabled" % a, ":%s_enabled" % b],
                )
    native.constraint_setting(name = "environment")
    native.constraint_value(name = "disabled", constraint_setting = ":environment")
