"""Loaders of real-checkpoint formats, each tested on a tiny random model of the same format in a temp dir:
a transformers VJEPA2 directory, an upstream V-JEPA 2 `.pt` (through the converter), a Llama causal LM
with its tokenizer, a sentence-transformers directory with EmbeddingGemma-style prompts; and `vljepa info`
reading the architectures of all four from their config files."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model_config
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    VJEPA2Config,
    VJEPA2Model,
)
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.config import XEncoderConfig, YEncoderConfig
from vljepa.model import VLJepa
from vljepa.model.convert import KEY_MAP, QKV, convert_vjepa2, template_pattern
from vljepa.model.info import describe
from vljepa.model.predictor import default_tokenizer_path
from vljepa.model.x_encoder import XEncoder
from vljepa.model.y_encoder import YEncoder
from vljepa.registry import ModelSpec

DOCUMENT_PROMPT, QUERY_PROMPT = "title: none | text: ", "task: search result | query: "  # EmbeddingGemma's


def tiny_vjepa2(seed: int = 0) -> VJEPA2Model:
    torch.manual_seed(seed)
    config = VJEPA2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        patch_size=8,
        crop_size=32,
        frames_per_clip=4,
        tubelet_size=2,
        pred_hidden_size=16,
        pred_num_hidden_layers=1,
        pred_num_attention_heads=2,
    )
    return VJEPA2Model(config).eval()


def video(frames: int = 4) -> torch.Tensor:
    return torch.randn(2, frames, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_transformers_vjepa2_directory_loads_as_the_x_encoder(tmp_path):
    reference = tiny_vjepa2()
    reference.save_pretrained(tmp_path / "vjepa2")
    encoder = XEncoder(XEncoderConfig(path=str(tmp_path / "vjepa2"), image_size=32, num_frames=4))
    assert encoder.embed_dim == 32 and not any(p.requires_grad for p in encoder.parameters())
    with torch.no_grad():
        assert torch.equal(encoder(video()), reference.get_vision_features(video()))


def upstream_state_dict(model: VJEPA2Model) -> dict[str, torch.Tensor]:
    """Invert the converter's key map: transformers encoder weights -> upstream names (with DDP prefixes)."""
    hf = {k: v for k, v in model.state_dict().items() if k.startswith("encoder.")}
    upstream = {}
    for upstream_template, hf_template in KEY_MAP.items():
        pattern = template_pattern(hf_template)
        for key, tensor in hf.items():
            if match := pattern.match(key):
                upstream[upstream_template.format(**match.groupdict())] = tensor.clone()
    query = template_pattern(QKV[1][0])
    for key in hf:
        if match := query.match(key):
            parts = [hf[t.format(**match.groupdict())] for t in QKV[1]]
            upstream[QKV[0].format(**match.groupdict())] = torch.cat(parts, dim=0)
    return {f"module.backbone.{k}": v for k, v in upstream.items()}


def test_upstream_checkpoint_converts_to_an_identical_encoder(tmp_path):
    reference = tiny_vjepa2()
    state = upstream_state_dict(reference)
    assert "module.backbone.blocks.1.attn.qkv.weight" in state and len(state) == 2 + 2 + 2 * 12  # fused qkv
    torch.save({"target_encoder": state, "encoder": state, "epoch": 7}, tmp_path / "vitl.pt")
    result = CliRunner().invoke(
        app,
        [
            "convert-vjepa2",
            str(tmp_path / "vitl.pt"),
            str(tmp_path / "hf"),
            "--num-heads",
            "2",
            "--image-size",
            "32",
            "--frames",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    converted = VJEPA2Model.from_pretrained(tmp_path / "hf").eval()
    assert converted.config.num_attention_heads == 2 and converted.config.hidden_size == 32
    with torch.no_grad():
        assert torch.equal(converted.get_vision_features(video()), reference.get_vision_features(video()))


def test_converter_is_strict_and_names_the_keys(tmp_path):
    state = upstream_state_dict(tiny_vjepa2())
    state["module.backbone.blocks.1.mlp.fc_1.weight"] = state.pop("module.backbone.blocks.1.mlp.fc1.weight")
    torch.save({"target_encoder": state}, tmp_path / "bad.pt")
    with pytest.raises(KeyError, match=r"blocks\.1\.mlp\.fc_1\.weight"):
        convert_vjepa2(tmp_path / "bad.pt", tmp_path / "out", num_heads=2, image_size=32, num_frames=4)
    state = upstream_state_dict(tiny_vjepa2())
    del state["module.backbone.norm.bias"]
    torch.save({"target_encoder": state}, tmp_path / "missing.pt")
    with pytest.raises(KeyError, match=r"encoder\.layernorm\.bias"):
        convert_vjepa2(tmp_path / "missing.pt", tmp_path / "out", num_heads=2, image_size=32, num_frames=4)
    with pytest.raises(KeyError, match="no entry 'ema'.*target_encoder"):
        convert_vjepa2(tmp_path / "missing.pt", tmp_path / "out", key="ema", num_heads=2)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<s>", "</s>"] + words)}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def test_llama_causal_lm_directory_gives_the_predictor_its_last_layers_and_tokenizer(tmp_path):
    directory = tmp_path / "llama"
    tokenizer = word_tokenizer("which way does the square move ?".split())
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    lm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            tie_word_embeddings=True,
        )
    )
    lm.save_pretrained(directory)
    config = tiny_model_config()
    config.predictor.llama_path, config.predictor.last_n_layers = str(directory), 2
    model = VLJepa(config)
    llama = model.predictor.llama
    assert len(llama.layers) == 2 and all(not layer.self_attn.is_causal for layer in llama.layers)
    for kept, source in zip(llama.layers, lm.model.layers[2:]):
        for (name, a), b in zip(kept.state_dict().items(), source.state_dict().values()):
            assert torch.equal(a, b), name
    assert torch.equal(llama.embed_tokens.weight, lm.model.embed_tokens.weight)
    ids, mask = model.predictor.tokenize(["which way does the square move ?", None])
    assert ids[0].tolist() == [4, 5, 6, 7, 8, 9, 10] and mask.sum(1).tolist() == [7, 0]
    with torch.no_grad():
        predicted = model.predict(
            torch.randn(2, 8, model.x_encoder.embed_dim), ["which way does the square move ?", None]
        )
    assert predicted.shape == (2, config.shared_dim) and torch.isfinite(predicted).all()
    config.predictor.last_n_layers = 5
    with pytest.raises(ValueError, match="last_n_layers=5 but the checkpoint has 4 layers"):
        VLJepa(config)


def sentence_transformers_directory(path) -> SentenceTransformer:
    """A tiny EmbeddingGemma-shaped model: transformer -> mean -> Dense -> Dense to 768 -> Normalize, with prompts."""
    bert = path.with_name(path.name + "-bert")
    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_path())
    tokenizer.save_pretrained(bert)
    torch.manual_seed(0)
    BertModel(
        BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
        )
    ).save_pretrained(bert)
    modules = [
        Transformer(str(bert), max_seq_length=32),
        Pooling(32, "mean"),
        Dense(32, 128, bias=False, activation_function=torch.nn.Identity()),
        Dense(128, 768, bias=False, activation_function=torch.nn.Identity()),
        Normalize(),
    ]
    model = SentenceTransformer(
        modules=modules, prompts={"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT}, device="cpu"
    )
    model.save(str(path))
    return SentenceTransformer(str(path), device="cpu")


def test_sentence_transformers_directory_embeds_targets_with_its_document_prompt(tmp_path):
    reference = sentence_transformers_directory(tmp_path / "st")
    texts = ["a red square moves left", "moving right"]
    for multiplier in (0.05, 0.0):  # trained, and frozen + memoised
        y_encoder = YEncoder(YEncoderConfig(path=str(tmp_path / "st"), lr_multiplier=multiplier), shared_dim=16).eval()
        assert y_encoder.text_dim == 768 and y_encoder.head.in_features == 768
        assert y_encoder.document_prompt == DOCUMENT_PROMPT
        with torch.no_grad():
            features = y_encoder.text_features(texts)
        expected = reference.encode_document(texts, convert_to_tensor=True)
        assert torch.allclose(features, expected, atol=1e-5)
        assert not torch.allclose(features, reference.encode(texts, convert_to_tensor=True), atol=1e-3)
    config = tiny_model_config()
    config.y_encoder.path = str(tmp_path / "st")
    assert VLJepa(config).encode_text(texts).shape == (2, config.shared_dim)


def test_a_model_without_prompts_embeds_targets_as_they_are(model_config):
    y_encoder = YEncoder(model_config.y_encoder, shared_dim=8).eval()
    assert y_encoder.document_prompt is None
    with torch.no_grad():
        expected = y_encoder.text_model.encode(["a cat"], convert_to_tensor=True)
        assert torch.allclose(y_encoder.text_features(["a cat"]), expected, atol=1e-5)


def test_info_reads_architectures_from_checkpoint_directories(tmp_path):
    """`describe` without registry architectures reads each checkpoint's config files and counts what loads."""
    tiny_vjepa2().save_pretrained(tmp_path / "vjepa2")
    word_tokenizer(["a", "b"]).save_pretrained(tmp_path / "llama")
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=6,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    ).save_pretrained(tmp_path / "llama")
    sentence_transformers_directory(tmp_path / "st")
    config = tiny_model_config()
    config.x_encoder = XEncoderConfig(path=str(tmp_path / "vjepa2"), image_size=32, num_frames=4)
    config.predictor.llama_path, config.predictor.last_n_layers = str(tmp_path / "llama"), 2
    config.y_encoder.path = str(tmp_path / "st")
    info = describe("dirs", ModelSpec("from directories", config))
    model = VLJepa(config)
    assert info.total == sum(p.numel() for p in model.parameters())
    assert info.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert info.part("predictor_layers").module == "Llama 2 of 3 layers x 32"
    assert info.part("y_encoder_dense").module == "Dense 32 -> 128 -> 768" and info.visual_tokens == 32
