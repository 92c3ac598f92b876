import pytest

from pawkit import plugins
from pawkit.hookspecs import hookimpl
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
