"""Configs are converted to their type hints and checked; every refusal is a ConfigError naming the key path."""

from __future__ import annotations

import json

import pytest

from vljepa.config import (
    ModelConfig,
    StageConfig,
    TrainConfig,
    load_config,
    load_train_config,
    read_config_json,
    write_config_json,
)
from vljepa.data.world import WorldConfig
from vljepa.encoder_pretrain import load_encoder_pretrain_config
from vljepa.errors import ConfigError
from vljepa.train.decoder import DecoderTrainConfig


def refusal(overrides: list[str], cls: type = TrainConfig) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(cls, None, overrides)
    return str(caught.value)


def test_scientific_notation_is_a_number_in_overrides_and_yaml(tmp_path):
    assert load_train_config(None, ["stages.0.lr=1e-3"]).stages[0].lr == 0.001
    assert isinstance(load_train_config(None, ["stages.0.lr=1e-3"]).stages[0].lr, float)
    (tmp_path / "run.yaml").write_text("weight_decay: 1e-2\nstages:\n  - {lr: 1e-3, steps: 1e3}\n")
    config = load_train_config(tmp_path / "run.yaml")
    assert (config.weight_decay, config.stages[0].lr, config.stages[0].steps) == (0.01, 0.001, 1000)
    assert type(config.stages[0].steps) is int


def test_a_float_field_accepts_a_numeric_string_and_an_int():
    assert load_train_config(None, ['stages.0.lr="2e-4"', "grad_clip=2"]).stages[0].lr == 2e-4
    assert load_train_config(None, ["grad_clip=2"]).grad_clip == 2.0


def test_a_word_for_a_float_is_refused_naming_the_key_and_type():
    assert refusal(["stages.0.lr=abc"]) == "stages.0.lr: expected float, got 'abc'"


def test_int_fields_take_integral_numbers_only():
    assert load_train_config(None, ["seed=1e3"]).seed == 1000
    assert refusal(["seed=1.5"]).startswith("seed: expected int, got 1.5")
    assert refusal(["seed=true"]) == "seed: expected int, got True"


@pytest.mark.parametrize("raw", ["nope", "yes", "1.5", "on"])
def test_bools_are_strict(raw):
    assert refusal([f"bf16={raw}"]).startswith("bf16=")
    assert refusal([f"gradient_checkpointing={raw}"]).startswith("gradient_checkpointing: expected bool")
    assert load_train_config(None, ["gradient_checkpointing=true"]).gradient_checkpointing is True


@pytest.mark.parametrize(
    "override,message",
    [
        ("stages.0.steps=-5", "stages.0.steps: must be >= 1, got -5"),
        ("save_every=0", "save_every: must be >= 1, got 0"),
        ("stages.1.batch_size=0", "stages.1.batch_size: must be >= 1, got 0"),
        ("stages.0.micro_batch_size=129", "stages.0.micro_batch_size: must be at most batch_size (128), got 129"),
        ("stages.0.lr=0", "stages.0.lr: must be > 0, got 0.0"),
        ("stages.1.warmup_steps=-1", "stages.1.warmup_steps: must be >= 0, got -1"),
        ("stages.0.schedule=linear", "stages.0.schedule: must be one of constant, cosine; got 'linear'"),
        ("weight_decay=.nan", "weight_decay: expected a finite float, got nan"),
        ("model.temperature=.inf", "model.temperature: expected a finite float, got inf"),
        ("grad_clip=0", "grad_clip: must be > 0, got 0.0"),
        ("model.loss=hinge", "model.loss: must be one of infonce, cosine, l1, l2; got 'hinge'"),
        ("sharding=zero3", "sharding: must be one of none, fsdp; got 'zero3'"),
        ("stages.5.steps=3", "stages.5: no such item; stages has 2 items (0..1)"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_key(override, message):
    assert refusal([override]) == message


def test_an_unknown_nested_key_is_named_with_its_path_and_the_known_keys():
    message = refusal(["model.predictor.hiden_size=3"])
    assert message.startswith("model.predictor.hiden_size: unknown config key; known keys: llama_path, ")
    assert "hidden_size" in message


def test_an_override_without_a_value_or_into_a_value_is_refused():
    assert (
        refusal(["stages.0.steps"])
        == "override 'stages.0.steps' is not of the form key=value (e.g. stages.0.steps=100)"
    )
    assert refusal(["seed.x=1"]) == "seed.x: seed is a value (0), not a section"


@pytest.mark.parametrize(
    "mixture,message",
    [
        ("{caption: 1, audio: 1}", "stages.0.mixture.audio: must be one of caption, vqa, label; got 'audio'"),
        (
            "{caption: 0, vqa: 0}",
            "stages.0.mixture: the weights must sum to more than 0, got {'caption': 0.0, 'vqa': 0.0}",
        ),
        ("{caption: -1, vqa: 2}", "stages.0.mixture.caption: must be >= 0, got -1.0"),
    ],
)
def test_a_bad_mixture_is_refused_naming_the_key(mixture, message):
    assert refusal([f"stages.0.mixture={mixture}"]) == message


def test_a_yaml_mixture_replaces_the_default_whole(tmp_path):
    (tmp_path / "stage.yaml").write_text("mixture: {vqa: 2}\nlr: 3e-4\n")
    stage = load_config(StageConfig, tmp_path / "stage.yaml")
    assert stage.mixture == {"vqa": 2.0} and stage.lr == 3e-4


def test_a_yaml_section_merges_key_by_key(tmp_path):
    (tmp_path / "run.yaml").write_text("model:\n  predictor: {num_heads: 8}\n")
    config = load_train_config(tmp_path / "run.yaml")
    assert config.model.predictor.num_heads == 8 and config.model.predictor.hidden_size == 128


def test_a_yaml_error_names_the_file_and_key(tmp_path):
    (tmp_path / "run.yaml").write_text("stages:\n  - {steps: lots}\n")
    with pytest.raises(ConfigError, match=r"^stages\.0\.steps: expected int, got 'lots'$"):
        load_train_config(tmp_path / "run.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping"):
        load_train_config(tmp_path / "list.yaml")


def test_a_config_built_in_python_is_checked_and_converted():
    with pytest.raises(ConfigError, match=r"^steps: must be >= 1, got 0$"):
        StageConfig(steps=0)
    assert StageConfig(lr="5e-4").lr == 5e-4


@pytest.mark.parametrize(
    "cls,override,message",
    [
        (WorldConfig, "size=33", "size: must be even (the video codec needs it), got 33"),
        (WorldConfig, "fps=-1", "fps: must be > 0, got -1.0"),
        (
            WorldConfig,
            "num_trian=5",
            "num_trian: unknown config key; known keys: seed, size, num_frames, fps, num_train, "
            "num_val, num_test, max_objects, shape_scale, background_noise, moving_distractors, "
            "num_streams, stream_seconds",
        ),
        (DecoderTrainConfig, "lr=abc", "lr: expected float, got 'abc'"),
        (DecoderTrainConfig, "decoder.hidden_size=abc", "decoder.hidden_size: expected int, got 'abc'"),
    ],
)
def test_world_and_decoder_configs_are_checked(cls, override, message):
    assert refusal([override], cls) == message


def test_encoder_pretrain_config_is_checked():
    assert load_encoder_pretrain_config(None, ["lr=1e-4"]).lr == 1e-4
    with pytest.raises(ConfigError, match=r"^masks\.1\.spatial_scale\.0: must be <= 1, got 1.5$"):
        load_encoder_pretrain_config(None, ["masks.1.spatial_scale=[1.5, 1.5]"])
    with pytest.raises(ConfigError, match=r"^ema: the first value \(low\) must not exceed the second"):
        load_encoder_pretrain_config(None, ["ema=[1.0, 0.9]"])


def test_a_saved_config_reads_back_equal(tmp_path):
    config = ModelConfig()
    write_config_json(config, tmp_path / "config.json")
    assert read_config_json(ModelConfig, tmp_path / "config.json", "vljepa checkpoint") == config
    saved = json.loads((tmp_path / "config.json").read_text())
    saved["predictor"]["num_heads"] = "four"
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match=r"config\.json: predictor\.num_heads: expected int, got 'four'$"):
        read_config_json(ModelConfig, tmp_path / "config.json", "vljepa checkpoint")
