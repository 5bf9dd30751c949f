"""The access-decision cache never changes a decision.

The host caches "may the peer read `name` here, and under which real name" per connection.
These tests check that with the cache every lookup gets the answer `pynto._service.resolve_attr`
gives without it: a seeded random walk over instances, classes (exposed or not, subclasses),
modules, builtin containers and instances whose own attributes shadow their class's, under both
policies; and the attack the old cache allowed, against a real server process.
"""

from __future__ import annotations

import random
import types
from typing import Any, Iterator

import pytest

import pynto
from hostile_services import ScriptServer
from pynto._pynto import _cache_stats
from pynto._service import Policy, resolve_attr

# --------------------------------------------------------------------------- the attack


@pytest.fixture(scope="module")
def cache_server() -> Iterator[ScriptServer]:
    with ScriptServer("CacheService") as server:
        yield server


def test_an_exposed_class_does_not_open_an_unexposed_one(cache_server: ScriptServer) -> None:
    with pynto.connect(cache_server.address) as conn:
        root = conn.root
        exposed_class = root.exposed_class
        # Allowed (the class is exposed), and missing: the old cache remembered "allowed"
        # for (type, name), and every class has the type `type`.
        assert getattr(exposed_class, "api_key", 0) == 0
        assert getattr(exposed_class, "reset_all", 0) == 0
        assert exposed_class.greeting == "hello"
        unexposed = root.unexposed_class
        with pytest.raises(pynto.AccessDenied) as denied:
            unexposed.api_key  # noqa: B018
        assert "SECRET" not in str(denied.value)
        with pytest.raises(pynto.AccessDenied):
            unexposed.reset_all()
        with pytest.raises(pynto.AccessDenied):
            # The attribute request itself, whatever the proxy class knows of methods.
            pynto.AsyncResult(unexposed._pynto_async_getattr(None, "reset_all")).value  # noqa: B018
        assert root.was_reset() is False
    # The server still serves a well-behaved client.
    with pynto.connect(cache_server.address) as conn:
        assert conn.root.exposed_class.greeting == "hello"
        assert conn.root.was_reset() is False


# --------------------------------------------------------------------------- the property


@pynto.exposed
class Marked:
    api_key = "marked-key"
    greeting = "marked"

    def method(self) -> str:
        return "marked method"


class SubMarked(Marked):
    extra = "sub-marked"


class Plain:
    api_key = "plain-secret"
    public = "plain-public"
    exposed_greeting = "plain-exposed-greeting"

    def method(self) -> str:
        return "plain method"

    @classmethod
    def reset_all(cls) -> str:
        return "reset"

    @pynto.exposed
    def marked(self) -> str:
        return "marked member"


class SubPlain(Plain):
    greeting = "sub-plain"


class Slotted:
    __slots__ = ("public",)

    def __init__(self) -> None:
        self.public = "slot"


class Text(str):
    """A str subclass: crosses by reference (a plain str crosses by value)."""


class Holder(pynto.Service):
    """Serves the targets by index."""

    def __init__(self, targets: list[Any]) -> None:
        self.targets = targets

    def exposed_target(self, i: int) -> Any:
        return self.targets[i]


NAMES = [
    "api_key", "reset_all", "public", "greeting", "method", "marked", "extra", "missing",
    "exposed_greeting", "append", "keys", "mro", "format", "__doc__", "__name__", "__class__",
    "_private", "f_globals", "attr",
]


def _targets() -> list[Any]:
    module_a = types.ModuleType("module_a")
    module_a.api_key = "module-a-key"  # type: ignore[attr-defined]
    module_a.exposed_greeting = "module-a-greeting"  # type: ignore[attr-defined]
    module_b = types.ModuleType("module_b")
    return [
        Marked, SubMarked, Plain, SubPlain, Slotted,
        Marked(), SubMarked(), Plain(), Plain(), SubPlain(), SubPlain(), Slotted(),
        module_a, module_b, [1, 2], {"a": 1}, Text("text"),
    ]


def _local(obj: Any, name: str, policy: Policy) -> tuple[str, ...]:
    """The outcome without any cache: the one access check, then the read."""
    try:
        real = resolve_attr(obj, name, policy)
    except pynto.AccessDenied:
        return ("denied",)
    try:
        value = getattr(obj, real)
    except AttributeError:
        return ("missing",)
    return ("value", real, repr(value))


def _remote(proxy: Any, name: str, obj: Any, policy: Policy) -> tuple[str, ...]:
    """The outcome through the connection (always a GetAttr request, whatever the proxy class
    knows of methods)."""
    try:
        value = pynto.AsyncResult(proxy._pynto_async_getattr(None, name)).value
    except pynto.AccessDenied:
        return ("denied",)
    except AttributeError:
        return ("missing",)
    # Which real attribute was read: the one whose value this is.
    try:
        real = resolve_attr(obj, name, policy)
    except pynto.AccessDenied:
        real = "<denied without the cache>"
    return ("value", real, repr(value))


def _mutate(rng: random.Random, targets: list[Any]) -> None:
    """Give an instance (or take away) an own attribute that shadows its class's."""
    candidates = [t for t in targets if hasattr(t, "__dict__") and not isinstance(t, type)]
    target = rng.choice(candidates)
    name = rng.choice(["api_key", "public", "greeting", "attr", "marked", "reset_all"])
    if rng.random() < 0.3:
        name = "exposed_" + name
    own = vars(target)
    if name in own:
        delattr(target, name)
    elif rng.random() < 0.3:
        setattr(target, name, pynto.exposed(lambda: "own marked function"))
    else:
        setattr(target, name, f"own {name}")


@pytest.mark.parametrize("allow_public_attrs", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cached_decisions_equal_uncached_ones(seed: int, allow_public_attrs: bool) -> None:
    rng = random.Random(seed)
    targets = _targets()
    policy = Policy(allow_public_attrs=allow_public_attrs)
    conn = pynto.connect_thread(Holder(targets), allow_public_attrs=allow_public_attrs)
    try:
        proxies = [conn.root.target(i) for i in range(len(targets))]
        for step in range(1500):
            if rng.random() < 0.1:
                _mutate(rng, targets)
                continue
            i = rng.randrange(len(targets))
            name = rng.choice(NAMES)
            expected = _local(targets[i], name, policy)
            got = _remote(proxies[i], name, targets[i], policy)
            assert got == expected, (step, targets[i], name)
        # The cache was in use (not a vacuous pass).
        assert _cache_stats()["access_decisions"] > 0
    finally:
        conn.close()


def test_long_names_are_decided_but_not_cached() -> None:
    plain = Plain()
    conn = pynto.connect_thread(Holder([plain]), allow_public_attrs=True)
    try:
        proxy = conn.root.target(0)
        before = _cache_stats()["access_decision_name_bytes"]
        for i in range(20):
            name = f"n{i}" + "x" * 4096
            with pytest.raises(AttributeError):
                pynto.AsyncResult(proxy._pynto_async_getattr(None, name)).value
        setattr(plain, "y" * 4096, "long")
        assert pynto.AsyncResult(proxy._pynto_async_getattr(None, "y" * 4096)).value == "long"
        assert _cache_stats()["access_decision_name_bytes"] - before < 4096
    finally:
        conn.close()


class Reassigned:
    shown = "class attribute"


def test_a_peer_changing_a_class_renews_the_decisions_for_its_instances() -> None:
    # "shown" is decided once for Reassigned instances and cached; then the peer gives the
    # class an exposed_shown, which is what "shown" reads from now on.
    instance = Reassigned()
    conn = pynto.connect_thread(
        Holder([Reassigned, instance]), allow_public_attrs=True, allow_setattr=True
    )
    try:
        cls_proxy, proxy = conn.root.target(0), conn.root.target(1)
        assert proxy.shown == "class attribute"
        cls_proxy.exposed_shown = "exposed now"
        assert resolve_attr(instance, "shown", Policy(allow_public_attrs=True)) == "exposed_shown"
        assert proxy.shown == "exposed now"
    finally:
        conn.close()
        del Reassigned.exposed_shown  # type: ignore[attr-defined]
