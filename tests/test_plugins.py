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


# --- env registration with options checks, and the notebook API ----------------------------


def test_a_check_declaring_options_gets_them_and_a_bare_check_still_works():
    seen = []

    def check(options):
        seen.append(options)
        return f"data_dir not found: {options['data_dir']}" if "data_dir" in options else None

    entry = Registered("a", object(), "p", check=check)
    assert entry.status({"data_dir": "/nope"}) == "data_dir not found: /nope"
    assert entry.status() == "ready" and seen == [{"data_dir": "/nope"}, {}]
    assert Registered("a", object(), "p", check=lambda: "needs java").status({"x": 1}) == "needs java"


def test_alfworld_check_reports_a_missing_data_dir(tmp_path, monkeypatch):
    import importlib.util

    import pawkit_adapters.alfworld as alfworld

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())  # as if alfworld were installed
    assert alfworld.check({"data_dir": str(tmp_path / "games")}) == (
        f"data_dir not found: {tmp_path / 'games'} (env.options.data_dir; unset it to use generated games)")
    assert alfworld.check({"data_dir": str(tmp_path)}) is None and alfworld.check() is None


class _CounterEnvs:
    def __init__(self, name: str = "notebook/counter"):
        self.name = name

    @hookimpl
    def register_envs(self, register):
        from pawkit_example_adapter.counter import CounterEnv

        register(self.name, CounterEnv)


def test_registering_again_replaces_and_the_same_object_is_a_no_op():
    first = _CounterEnvs("notebook/first")
    try:
        assert plugins.register_plugin(first, name="cell") == "cell"
        assert plugins.register_plugin(first, name="cell") == "cell"  # the same object: nothing happens
        assert "notebook/first" in plugins.registry("env")
        plugins.register_plugin(_CounterEnvs("notebook/second"), name="cell")  # the cell, edited and run again
        assert "notebook/first" not in plugins.registry("env") and plugins.registry("env").get("notebook/second").plugin == "cell"
    finally:
        plugins.unregister_plugin("cell")
    plugins.unregister_plugin("cell")  # an unknown name: a no-op
    assert "notebook/second" not in plugins.registry("env")


NOTEBOOK_API_PROBE = """
import json, sys
import pawkit
before = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))
cfg = pawkit.load_config("example/counter", overrides=["trainer.steps=1"])
try:
    pawkit.nope
except AttributeError as exc:
    missing = str(exc)
print(json.dumps({"before": before, "split": cfg.env.eval_split, "missing": missing,
                  "after": "torch" in sys.modules, "api": [n for n in ("train", "register_plugin", "unregister_plugin") if n in dir(pawkit)]}))
"""


def test_import_pawkit_is_light_and_its_api_is_lazy():
    proc = subprocess.run([sys.executable, "-c", NOTEBOOK_API_PROBE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == {"before": [], "split": "test", "missing": "module 'pawkit' has no attribute 'nope'",
                                       "after": False, "api": ["train", "register_plugin", "unregister_plugin"]}



def test_pawkit_train_is_callable_even_after_its_subpackage_is_imported(tmp_path):
    import pawkit
    import pawkit.train.trainer  # binds the package attribute `train` to the subpackage

    assert pawkit.register_plugin is plugins.register_plugin and pawkit.train.trainer.train.__name__ == "train"
    config = pawkit.load_config("gridnav", overrides=["trainer.steps=1", "rollout.tasks_per_step=1", "rollout.group_size=2",
                                                      f"trainer.output_dir={tmp_path}", "trainer.eval_every=0"])
    history = pawkit.train(config, show_progress=False)
    assert [row["step"] for row in history] == [1.0]


MAIN_PLUGIN_PROBE = """
import pawkit
from pawkit.hookspecs import hookimpl
from pawkit.rollout.envpool import make_env_pool
class NotebookEnvs:
    @hookimpl
    def register_envs(self, register):
        from pawkit_example_adapter.counter import CounterEnv
        register("notebook/counter", CounterEnv)
pawkit.register_plugin(NotebookEnvs(), name="notebook-envs")
with make_env_pool("notebook/counter", {}, 1, num_workers=0) as pool:  # in-process: fine
    print(type(pool.reset([(0, None, 1)])[0]).__name__)
for env in ("example/counter", "notebook/counter"):
    try:
        with make_env_pool(env, {}, 1, num_workers=1) as pool:
            print(type(pool.reset([(0, None, 1)])[0]).__name__)
    except pawkit.UsageError as exc:
        print("error:", exc)
"""


def test_workers_refuse_an_env_of_a_plugin_defined_in_main_with_one_line():
    """`python -c` / a notebook / the REPL: __main__ has no file a spawned worker could import."""
    proc = subprocess.run([sys.executable, "-c", MAIN_PLUGIN_PROBE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [
        "Observation",
        "Observation",  # an installed env still runs in workers
        "error: environment 'notebook/counter' of plugin 'notebook-envs' cannot run in env worker processes: it is "
        "defined in __main__ (a notebook, the REPL, python -c or stdin), which a spawned worker cannot import; put the "
        "plugin in an importable module (a .py file you import), or set rollout.num_workers=0",
    ]


def test_workers_refuse_to_start_from_a_script_on_stdin():
    proc = subprocess.run([sys.executable, "-"], input=MAIN_PLUGIN_PROBE, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    refusal = ("error: env worker processes cannot start from a script read from stdin: each one re-runs __main__ "
               "(<stdin>); run the script from a file, or set rollout.num_workers=0")
    assert proc.stdout.splitlines() == ["Observation", refusal, refusal]


class _Unpicklable(_CounterEnvs):
    def __init__(self):
        super().__init__("notebook/unpicklable")
        self.handle = lambda: None  # a lambda does not pickle


def test_workers_refuse_an_env_of_an_unpicklable_plugin():
    from pawkit.protocol import UsageError
    from pawkit.rollout.envpool import make_env_pool

    name = plugins.register_plugin(_Unpicklable(), name="unpicklable")
    try:
        with pytest.raises(UsageError) as err:
            make_env_pool("notebook/unpicklable", {}, 1, num_workers=1)
        message = str(err.value)
        assert message.count("\n") == 0
        assert message.startswith("environment 'notebook/unpicklable' of plugin 'unpicklable' cannot run in env worker "
                                  "processes: it cannot be pickled for a spawned worker (")
        assert message.endswith("; put the plugin in an importable module (a .py file you import), or set rollout.num_workers=0")
    finally:
        plugins.unregister_plugin(name)
