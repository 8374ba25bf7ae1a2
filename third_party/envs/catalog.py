"""What third_party/envs/envs.bzl declares, for Python readers (the README generator, the golden
corpus check): one parser of the ENVIRONMENTS table, stdlib only.

    environments()              {name: Environment(role, lock, always)} in declaration order
    pinned_scenario_envs()      names of the scenario environments pinned by a lock
"""

import collections
import os
import re

ENVS_BZL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "envs.bzl")
Environment = collections.namedtuple("Environment", "name role lock always")
_ENTRY = re.compile(r'^    "(\w+)": struct\((.*)\),$', re.M)


def _field(body, name):
    m = re.search(rf'\b{name} = ("[^"]*"|None|True|False)', body)
    if not m:
        raise ValueError(f"envs.bzl: an environment without {name}: {body}")
    value = m.group(1)
    return {"None": None, "True": True, "False": False}.get(value, value.strip('"'))


def default(path=ENVS_BZL):
    with open(path) as f:
        return re.search(r'^DEFAULT = "(\w+)"', f.read(), re.M).group(1)


def environments(path=ENVS_BZL):
    with open(path) as f:
        text = f.read()
    return {m.group(1): Environment(m.group(1), _field(m.group(2), "role"), _field(m.group(2), "lock"),
                                    _field(m.group(2), "always"))
            for m in _ENTRY.finditer(text)}


def pinned_scenario_envs(path=ENVS_BZL):
    return [e.name for e in environments(path).values() if e.role == "scenarios" and e.lock]
