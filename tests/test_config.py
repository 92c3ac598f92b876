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


def test_every_field_has_a_one_line_description():
    from pawkit.config_reference import leaf_fields

    fields = leaf_fields()
    assert len(fields) >= 72
    missing = [key for key, _, info in fields if not (info.description or "").strip()]
    assert not missing, f"fields without a description: {', '.join(missing)}"
    multiline = [key for key, _, info in fields if "\n" in info.description]
    assert not multiline, f"descriptions must be one line: {', '.join(multiline)}"


def test_symbols_are_named_where_the_method_has_one():
    from pawkit.config_reference import leaf_fields

    described = {key: info.description for key, _, info in leaf_fields()}
    for key, symbol in {"paw.rho": "ρ", "paw.keep_ratio": "κ", "paw.lambda0": "λ0", "algorithm.gamma": "γ",
                        "algorithm.clip_low": "ε_low", "algorithm.step_advantage_weight": "ω", "rollout.group_size": "G"}.items():
        assert described[key].startswith(symbol), (key, described[key])


def test_config_reference_is_up_to_date():
    from pathlib import Path

    from pawkit.config_reference import reference_markdown

    path = Path(__file__).resolve().parent.parent / "docs" / "config-reference.md"
    assert path.exists() and path.read_text() == reference_markdown(), (
        "docs/config-reference.md is out of date; regenerate it with: "
        "python -m pawkit.config_reference > docs/config-reference.md"
    )


def test_reference_lists_every_key_with_default_and_constraints():
    from pawkit.config_reference import leaf_fields, reference_markdown

    text = reference_markdown()
    for key, _, _ in leaf_fields():
        assert f"| `{key}` |" in text, key
    assert "| `paw.rho` | `0.2` | `float`, ≥ 0, ≤ 1 | ρ:" in text
    assert "| `rollout.max_steps` | `null` | `int \\| null`, ≥ 1 |" in text
    assert "&lt;think>" in text  # tags in descriptions are escaped, not swallowed as HTML


def test_explain_shows_resolved_values():
    from pawkit.config_reference import explain

    rows = {key: (value, description) for key, value, description in explain(load_config("gridnav", overrides=["paw.rho=0.3"]))}
    assert rows["paw.rho"][0] == "0.3" and rows["paw.rho"][1].startswith("ρ:")
    assert rows["env.name"][0] == '"gridnav"'
    assert rows["rollout.constrained"][0] == "true"  # from configs/gridnav.yaml
    assert rows["model.lora.r"][0] == "8"


def test_config_show_explain_prints_one_line_per_key(capsys):
    from pawkit.cli import main
    from pawkit.config_reference import leaf_fields

    assert main(["config", "show", "--env", "gridnav", "--explain", "paw.rho=0.3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(leaf_fields())  # not a TTY: plain aligned columns, no table borders
    rho = next(line for line in lines if line.startswith("paw.rho "))
    assert rho.split()[1] == "0.3" and "clipped-MAE threshold" in rho
