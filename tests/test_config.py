import pytest

from pawkit.config import ConfigError, load_config, parse_overrides


def test_overrides_are_typed_and_nested():
    assert parse_overrides(["trainer.steps=3", "paw.enabled=true", "model.name=tiny", "paw.rho=0.5"]) == {
        "trainer": {"steps": 3},
        "paw": {"enabled": True, "rho": 0.5},
        "model": {"name": "tiny"},
    }


def test_env_yaml_then_overrides():
    cfg = load_config("gridnav", overrides=["trainer.steps=7", "paw.selector=random"])
    assert cfg.env.name == "gridnav"
    assert cfg.trainer.steps == 7
    assert cfg.paw.selector == "random"
    assert cfg.rollout.constrained is True  # from configs/gridnav.yaml
    assert cfg.trainer.lr == 0.003


def test_every_problem_is_one_line_naming_the_key():
    with pytest.raises(ConfigError) as err:
        load_config("gridnav", overrides=["trainer.steps=abc", "nope.key=1", "rollout.group_size=0"])
    lines = str(err.value).splitlines()
    assert len(lines) == 3
    assert any("'trainer.steps'" in line and "'abc'" in line for line in lines)
    assert any("unknown config key 'nope'" in line for line in lines)
    assert any("'rollout.group_size'" in line for line in lines)


def test_malformed_override():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["trainer.steps"])


def test_constrained_needs_action_format():
    with pytest.raises(ConfigError, match="constrained decoding needs rollout.output_format"):
        load_config("gridnav", overrides=["rollout.output_format=think_action"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(config_file=tmp_path / "missing.yaml")


def test_config_files_merge_in_order():
    from pawkit.config import CONFIG_DIR

    cfg = load_config(
        "gridnav", [CONFIG_DIR / "gridnav.yaml", CONFIG_DIR / "ablations" / "echo-ce.yaml"], ["paw.lambda0=0.1"]
    )
    assert (cfg.paw.enabled, cfg.paw.selector, cfg.paw.wm_loss, cfg.paw.balancer) == (True, "all", "ce", "fixed")
    assert cfg.paw.lambda0 == 0.1 and cfg.rollout.constrained is True  # gridnav.yaml kept


def test_every_shipped_config_is_valid():
    from pawkit.config import CONFIG_DIR

    from pawkit.experiments.plan import load_sweep, plan_runs

    for path in CONFIG_DIR.rglob("*.yaml"):
        if path.parent.name == "sweeps":  # sweep files: every arm's config must load
            assert plan_runs(load_sweep(path))
        else:
            load_config(config_file=path)
