"""Model descriptions: presets (with their source), config.json parsing, exact parameter counts."""

from __future__ import annotations

import dataclasses
import json

import pytest

from edgefit.errors import EdgefitError
from edgefit.serve import Architecture, from_hf_config, list_presets, load_architecture


def test_required_presets_ship():
    assert {"llama-3-8b", "llama-3-70b", "mistral-7b", "gpt2"} <= set(list_presets())


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads_with_its_source(name):
    arch = load_architecture(name)
    assert arch.name == name and arch.source.startswith("https://huggingface.co/")
    assert arch.params > 0 and arch.kv_elements_per_token > 0


def test_llama_3_70b_parameters_by_hand():
    a = load_architecture("llama-3-70b")
    h, i, v, layers = 8192, 28672, 128256, 80
    per_layer = h * h + 2 * h * (8 * 128) + h * h + 3 * h * i + 2 * h  # Q, K, V (GQA), O, SwiGLU, 2 RMSNorms
    assert a.params == layers * per_layer + 2 * v * h + h == 70_553_706_496
    assert a.params / 1e9 == pytest.approx(70.6, abs=0.06)


def test_llama_3_8b_mistral_gpt2_parameters():
    assert load_architecture("llama-3-8b").params == 8_030_261_248  # ≈ 8.03 B
    assert load_architecture("mistral-7b").params == 7_241_732_096  # ≈ 7.24 B
    assert load_architecture("gpt2").params == 124_439_808  # GPT-2 small, tied, with biases and positions


def test_kv_elements_per_token():
    a = load_architecture("llama-3-70b")
    assert a.kv_elements_per_token == 2 * 80 * 8 * 128


@pytest.mark.parametrize("name", list_presets())
def test_parameter_count_matches_torch_for_every_structure(name):
    """The counting formula, held against a torch model of the same structure, shrunk to run fast."""
    pytest.importorskip("torch")
    from edgefit.serve._reference import ReferenceDecoder

    a = load_architecture(name)
    small = dataclasses.replace(a, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=96,
                                vocab_size=50, max_positions=32, head_dim=0,
                                num_kv_heads=4 if a.num_kv_heads == a.num_heads else 2)
    assert ReferenceDecoder(small, max_len=8).parameter_count() == small.params


def test_preset_aliases_and_user_config_file(tmp_path):
    assert load_architecture("meta-llama/Meta-Llama-3-70B").name == "llama-3-70b"
    cfg = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192,
           "tie_word_embeddings": False, "hidden_act": "silu"}
    path = tmp_path / "my-model" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(cfg))
    arch = load_architecture(path)
    assert arch.name == "my-model" and arch.params == load_architecture("llama-3-8b").params


def test_gpt2_keys_are_read():
    arch = from_hf_config({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024,
                           "vocab_size": 50257})
    assert (arch.intermediate_size, arch.mlp, arch.norm, arch.tied_embeddings) == (3072, "plain", "layer", True)


@pytest.mark.parametrize("config, message", [
    ({"hidden_size": 4096, "num_hidden_layers": 32}, "num_attention_heads"),
    ({"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 10,
      "max_position_embeddings": 10}, "intermediate_size"),
    ({"hidden_size": "big", "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 10,
      "intermediate_size": 4, "max_position_embeddings": 10}, "hidden_size must be a positive integer"),
    ({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3,
      "vocab_size": 10, "intermediate_size": 4, "max_position_embeddings": 10}, "not a multiple"),
    ([1, 2], "JSON object"),
])
def test_bad_configs_are_one_clear_error(config, message):
    with pytest.raises(EdgefitError, match=message):
        from_hf_config(config)


def test_unknown_model_names_the_presets():
    with pytest.raises(EdgefitError, match="unknown model") as exc:
        load_architecture("llama-9-900b")
    assert "llama-3-70b" in exc.value.fix


def test_architecture_is_frozen():
    a = Architecture("tiny", 64, 2, 4, 2, 256, 100, 128)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.hidden_size = 1  # type: ignore[misc]
