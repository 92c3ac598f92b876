import json
import subprocess
import sys

import pluggy
import pytest

from pawkit import cli, plugins
from pawkit.hookspecs import hookimpl, hookspec
from pawkit.plugins import PluginError, Registered, Registry


def test_unknown_name_lists_choices():
    reg = Registry("selector")
    reg.add(Registered("entropy", object(), "a"))
    reg.add(Registered("random", object(), "a"))
    with pytest.raises(PluginError) as err:
        reg.get("entropyy")
    assert str(err.value) == "unknown selector 'entropyy' (did you mean 'entropy'?); available: entropy, random"


def test_duplicate_names_both_plugins():
    reg = Registry("env")
    reg.add(Registered("x", object(), "first_plugin"))
    with pytest.raises(PluginError) as err:
        reg.add(Registered("x", object(), "second_plugin"))
    assert str(err.value) == "duplicate env 'x': registered by plugin 'first_plugin' and by plugin 'second_plugin'"


class _Balancers:
    @hookimpl
    def register_balancers(self, register):
        def half(group_mean_returns, max_return, cfg):
            """Half of lambda0 everywhere."""
            return group_mean_returns * 0 + cfg.lambda0 / 2

        register("half", half)


def test_programmatic_registration_and_duplicate_through_hooks():
    name = plugins.register_plugin(_Balancers(), name="test-balancers")
    try:
        entry = plugins.registry("balancer").get("half")
        assert entry.plugin == "test-balancers"
        assert entry.description == "Half of lambda0 everywhere."
        plugins.register_plugin(_Balancers(), name="test-balancers-2")
        with pytest.raises(PluginError, match="registered by plugin 'test-balancers' and by plugin 'test-balancers-2'"):
            plugins.registry("balancer")
        plugins.unregister_plugin("test-balancers-2")
    finally:
        plugins.unregister_plugin(name)
    assert "half" not in plugins.registry("balancer")


def test_env_status_check():
    assert Registered("a", object(), "p", check=lambda: "needs java").status() == "needs java"
    assert Registered("a", object(), "p", check=lambda: None).status() == "ready"


# --- opt-in hook arguments ---------------------------------------------------------------


class _NoArguments:
    called = False

    @hookimpl
    def register_balancers(self):
        _NoArguments.called = True


class _OnlyRegister:
    @hookimpl
    def register_balancers(self, register):
        register("only_register", lambda group_mean_returns, max_return, cfg: group_mean_returns)


def test_hookimpls_get_only_the_arguments_they_declare():
    names = [plugins.register_plugin(_NoArguments(), name="no-args"),
             plugins.register_plugin(_OnlyRegister(), name="only-register")]
    try:
        assert "only_register" in plugins.registry("balancer")
        assert _NoArguments.called
    finally:
        for name in names:
            plugins.unregister_plugin(name)


def test_a_spec_gaining_an_argument_does_not_break_older_impls():
    """A later hookspec (here: with ``pawkit_version``) still calls impls written for the old one."""

    class NewerSpecs:
        @hookspec
        def register_envs(self, register, pawkit_version):
            """The same hook with one more (opt-in) argument."""

    class Old:
        @hookimpl
        def register_envs(self, register):
            register("old", object())

    class New:
        @hookimpl
        def register_envs(self, register, pawkit_version):
            register(f"new-{pawkit_version}", object())

    pm = pluggy.PluginManager("pawkit")
    pm.add_hookspecs(NewerSpecs)
    pm.register(Old())
    pm.register(New())
    seen = []
    for impl in pm.hook.register_envs.get_hookimpls():
        plugins.call_hookimpl(impl, register=lambda name, obj: seen.append(name), pawkit_version="9.9")
    assert sorted(seen) == ["new-9.9", "old"]


# --- a misspelt hook is a broken plugin, not a silent no-op --------------------------------


class _Misspelt:
    @hookimpl
    def register_balancer(self, register):  # the hook is register_balancers
        register("never", object())


def test_misspelt_hook_is_reported_and_the_plugin_unregistered(capsys):
    with pytest.raises(PluginError) as err:
        plugins.register_plugin(_Misspelt(), name="typo-plugin")
    reason = "unknown hook 'register_balancer' (did you mean 'register_balancers'?); the plugin was not loaded"
    try:
        assert str(err.value) == f"plugin 'typo-plugin': {reason}"
        assert plugins.pm.get_plugin("typo-plugin") is None
        assert plugins.broken_plugins["typo-plugin"] == reason
        assert cli.main(["plugins", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["broken"]["typo-plugin"] == reason
        assert cli.main(["plugins"]) == 0
        assert f"plugin 'typo-plugin' failed to load: {reason}" in capsys.readouterr().err
    finally:
        plugins.broken_plugins.pop("typo-plugin", None)


# --- lazy "module:attr" registrations ---------------------------------------------------


def test_lazy_string_is_imported_on_first_use_and_cached(tmp_path, monkeypatch):
    (tmp_path / "pawkit_lazy_probe.py").write_text("def half(group_mean_returns, max_return, cfg):\n    return 0.5\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    class Lazy:
        @hookimpl
        def register_balancers(self, register):
            register("lazy_half", "pawkit_lazy_probe:half", description="Half, lazily.")

    name = plugins.register_plugin(Lazy(), name="lazy")
    try:
        entry = plugins.registry("balancer").get("lazy_half")
        assert (entry.description, entry.target) == ("Half, lazily.", "pawkit_lazy_probe:half")
        assert "pawkit_lazy_probe" not in sys.modules  # listed, not imported
        half = plugins.get("balancer", "lazy_half")
        assert half(None, 1.0, None) == 0.5 and entry.obj is half
        assert sys.modules["pawkit_lazy_probe"].half is half
    finally:
        plugins.unregister_plugin(name)
        sys.modules.pop("pawkit_lazy_probe", None)


@pytest.mark.parametrize(
    "target, reason",
    [
        ("pawkit_no_such_module:Env", "ModuleNotFoundError: No module named 'pawkit_no_such_module'"),
        ("json:NoSuchAttr", "AttributeError: module 'json' has no attribute 'NoSuchAttr'"),
        ("json.dumps", "ValueError: not a 'module:attr' reference"),
    ],
)
def test_unloadable_lazy_string_is_one_line_naming_plugin_and_string(target, reason):
    class Broken:
        @hookimpl
        def register_envs(self, register):
            register("broken/env", target, description="never loads")

    name = plugins.register_plugin(Broken(), name="broken-plugin")
    try:
        assert plugins.registry("env").get("broken/env").description == "never loads"  # listing still works
        with pytest.raises(PluginError) as err:
            plugins.get("env", "broken/env")
        assert str(err.value) == f"cannot load env 'broken/env' of plugin 'broken-plugin' from {target!r}: {reason}"
        with pytest.raises(PluginError):
            cli.make_env("broken/env", {})
    finally:
        plugins.unregister_plugin(name)


def test_builtin_lazy_descriptions_match_the_docstrings():
    for kind in plugins.HOOKS:
        for entry in plugins.registry(kind):
            if entry.target and entry.plugin in {"selectors", "wm_losses", "balancers", "advantages", "example_strategy"}:
                doc = (entry.obj.__doc__ or "").strip().split("\n")[0]
                assert entry.description == doc, f"{kind} {entry.name}"


LISTING_PROBE = """
import json, sys
from pawkit.cli import main
code = main([{command!r}, "--json"])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


@pytest.mark.parametrize("command", ["envs", "plugins"])
def test_listing_commands_import_no_torch(command):
    """Every entry-point module stays light: listing what is installed imports no ML stack."""
    heavy = {"torch", "transformers", "peft", "textarena", "scienceworld", "alfworld", "textworld", "bm25s"}
    proc = subprocess.run(
        [sys.executable, "-c", LISTING_PROBE.format(command=command, heavy=heavy)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    json.loads(proc.stdout)
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == {"code": 0, "heavy": []}
