"""from-config: read a model's published config.json (or params.json) into one candidate ingest record.

The record carries only what the file states: each architecture value (and context_length, from
max_position_embeddings) comes from a named key and is cited to the given source with that key as
the locator. A key the file does not have stays out of the record; nothing is filled in from a
library's defaults or from the model's name. attention_type and positional_encoding are read from
stated keys only (see ATTENTION and POSITION below). The result is a candidate: a curator adds the
name, kind, organization, summary, classes and review before `model-atlas ingest`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.package.files import INT64_MAX, JSONInputError, parse_json_input, read_text_limited

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ID_MAX = 64

# Where a multimodal config keeps its language model's settings; looked up before the top level.
TEXT_SECTIONS = ("text_config", "llm_config", "language_config")
# Sub-objects some publishers use for one group of settings (params.json "moe", DBRX "ffn_config", MPT "attn_config").
GROUP_SECTIONS = ("moe", "ffn_config", "attn_config")

# architecture field -> the key spellings that state it, in order of preference
COUNTS: dict[str, tuple[str, ...]] = {
    "layers": ("num_hidden_layers", "n_layer", "n_layers", "num_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model", "dim"),
    "attention_heads": ("num_attention_heads", "n_head", "n_heads", "num_heads"),
    "kv_heads": ("num_key_value_heads", "n_kv_heads", "num_kv_heads"),
    "vocab_size": ("vocab_size", "padded_vocab_size"),
    "experts_total": ("num_local_experts", "n_routed_experts", "num_experts", "moe_num_experts"),
    "experts_active": ("num_experts_per_tok", "moe_top_k"),
}
CONTEXT_KEYS = ("max_position_embeddings",)
# An encoder-decoder config counts one stack (T5 num_layers is the encoder's): the network's block count is not stated.
ENCODER_DECODER_KEYS = ("is_encoder_decoder", "num_decoder_layers", "decoder_layers")
DECODER_LAYER_KEYS = ("num_decoder_layers", "decoder_layers")
MLA_KEY = "kv_lora_rank"
# Keys that describe state-space or mixed layer stacks (Jamba, Mamba, Zamba, Nemotron-H): the kv head count
# of the attention layers does not describe the network's attention, so attention_type is left to the curator.
HYBRID_KEYS = ("attn_layer_period", "layers_block_type", "hybrid_override_pattern", "ssm_cfg", "mamba_d_state", "attn_layer_offset")
MULTI_QUERY_KEY = "multi_query"
ROPE_KEYS = ("rope_theta", "rope_scaling", "rotary_emb_base", "rotary_pct", "rotary_dim")
ALIBI_KEY = "alibi"
RELATIVE_KEYS = ("relative_attention_num_buckets",)
# position_embedding_type values (BERT-style configs) -> positional_encoding
POSITION_TYPES = {
    "absolute": "learned-absolute",
    "relative_key": "relative",
    "relative_key_query": "relative",
    "rotary": "rope",
    "rope": "rope",
    "alibi": "alibi",
}
ARCH_ORDER = (
    "layers",
    "hidden_size",
    "attention_heads",
    "kv_heads",
    "vocab_size",
    "attention_type",
    "positional_encoding",
    "experts_total",
    "experts_active",
)


class ConfigError(Exception):
    """The config file cannot be read as a JSON object; the message names the file, the position and a fix."""


@dataclass
class Candidate:
    record: dict
    notes: list[str] = field(default_factory=list)

    @property
    def stated(self) -> int:
        return len(self.record.get("architecture", {})) + ("context_length" in self.record)


def read_config(path: Path) -> dict:
    """The config as a dict; a ConfigError with file:line:column for anything else."""
    try:
        text = read_text_limited(path, "utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file\n\nfix: give the path of the model's config.json or params.json") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: byte {exc.start} is not UTF-8\n\nfix: save the file as UTF-8 JSON") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        data = parse_json_input(path, text, "a model config", "download the file again from the model's repository, unedited")
    except JSONInputError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1:1: the file holds a JSON {type(data).__name__}, not an object\n\nfix: give a config.json or params.json, whose top level is {{...}}"
        )
    return data


def _scopes(config: dict) -> list[tuple[str, dict]]:
    """(path prefix, object) pairs to look keys up in, most specific first."""
    scopes = []
    for section in TEXT_SECTIONS:
        inner = config.get(section)
        if isinstance(inner, dict):
            scopes.append((section + ".", inner))
            scopes += [(f"{section}.{g}.", inner[g]) for g in GROUP_SECTIONS if isinstance(inner.get(g), dict)]
    scopes.append(("", config))
    scopes += [(f"{g}.", config[g]) for g in GROUP_SECTIONS if isinstance(config.get(g), dict)]
    return scopes


def _lookup(scopes: list[tuple[str, dict]], keys: tuple[str, ...]) -> tuple[str, object] | None:
    """The first stated (non-null) key, as (its path in the file, its value)."""
    for prefix, obj in scopes:
        for key in keys:
            if key in obj and obj[key] is not None:
                return prefix + key, obj[key]
    return None


def _count(scopes, keys, notes: list[str]) -> tuple[str, int] | None:
    hit = _lookup(scopes, keys)
    if hit is None:
        return None
    path, value = hit
    if isinstance(value, bool) or not isinstance(value, int):
        notes.append(f"{path} is {json.dumps(value)}, not a whole number: left out")
        return None
    if value < 1:
        notes.append(f"{path} is {value}, not a positive count: left out")
        return None
    if value > INT64_MAX:
        notes.append(f"{path} is {value}, more than a 64-bit integer column holds: left out")
        return None
    return path, value


def architecture_facts(config: dict) -> tuple[dict[str, tuple[object, str]], list[str]]:
    """{field: (value, locator keys)} for what the config states, and notes on what it left out and why."""
    scopes = _scopes(config)
    notes: list[str] = []
    facts: dict[str, tuple[object, str]] = {}
    for name, keys in COUNTS.items():
        hit = _count(scopes, keys, notes)
        if hit:
            facts[name] = (hit[1], hit[0])

    encdec = _lookup(scopes, ENCODER_DECODER_KEYS)
    if "layers" in facts and encdec and encdec[1] is not False:
        decoder = _lookup(scopes, DECODER_LAYER_KEYS)
        stacks = f"{facts['layers'][1]} is {facts['layers'][0]}" + (f", {decoder[0]} is {decoder[1]}" if decoder else ", no decoder count stated")
        notes.append(f"{encdec[0]} marks an encoder-decoder ({stacks}): layers (blocks in the network) left out for you to settle from the paper")
        facts.pop("layers")

    mq = _lookup(scopes, (MULTI_QUERY_KEY,))
    if "kv_heads" not in facts and mq and mq[1] is True:
        facts["kv_heads"] = (1, mq[0])

    total, active = facts.get("experts_total"), facts.get("experts_active")
    if total and total[0] == 1:
        notes.append(f"{total[1]} is 1: one expert is a dense layer, not a mixture of experts; experts left out")
        facts.pop("experts_total")
        facts.pop("experts_active", None)
    elif active and not total:
        notes.append(f"{active[1]} is stated but no count of routed experts is: experts_active left out")
        facts.pop("experts_active")

    mla = _lookup(scopes, (MLA_KEY,))
    hybrid = _lookup(scopes, HYBRID_KEYS)
    heads, kv = facts.get("attention_heads"), facts.get("kv_heads")
    if hybrid:
        notes.append(f"{hybrid[0]} describes state-space or mixed layers: attention_type left out for you to settle from the paper")
    elif mla:
        facts["attention_type"] = ("multi-head-latent", mla[0])
    elif kv and kv[0] == 1:
        facts["attention_type"] = ("multi-query", kv[1])
    elif heads and kv:
        if kv[0] == heads[0]:
            facts["attention_type"] = ("multi-head", f"{kv[1]}, {heads[1]}")
        elif kv[0] < heads[0]:
            facts["attention_type"] = ("grouped-query", f"{kv[1]}, {heads[1]}")
        else:
            notes.append(f"{kv[1]} ({kv[0]}) exceeds {heads[1]} ({heads[0]}): attention_type left out; check the file")

    position = _position(scopes)
    if position:
        facts["positional_encoding"] = position
    missing = [k for k in ARCH_ORDER if k not in facts and not (k.startswith("experts_") and "experts_total" not in facts)]
    if missing:
        notes.append(f"left out (not stated in the file, or see the notes above): {', '.join(missing)}")
    return {k: facts[k] for k in ARCH_ORDER if k in facts}, notes


def _position(scopes) -> tuple[str, str] | None:
    typed = _lookup(scopes, ("position_embedding_type",))
    if typed and isinstance(typed[1], str) and typed[1] in POSITION_TYPES:
        return POSITION_TYPES[typed[1]], typed[0]
    alibi = _lookup(scopes, (ALIBI_KEY,))
    if alibi and alibi[1] is True:
        return "alibi", alibi[0]
    rope = _lookup(scopes, ROPE_KEYS)
    if rope:
        return "rope", rope[0]
    relative = _lookup(scopes, RELATIVE_KEYS)
    if relative:
        return "relative", relative[0]
    return None


def candidate_record(config: dict, model_id: str, source_id: str, locator_prefix: str, update: bool = False) -> Candidate:
    """One ingest record holding the config's stated facts, each cited to source_id at '<prefix> <key>'."""
    facts, notes = architecture_facts(config)
    scopes = _scopes(config)
    context = _count(scopes, CONTEXT_KEYS, notes)
    record: dict = {"model_id": model_id}
    if update:
        record["update"] = True
    citations: dict[str, dict] = {}
    if context:
        record["context_length"] = context[1]
        citations["context_length"] = {"source_id": source_id, "locator": f"{locator_prefix} {context[0]}".strip()}
    if facts:
        record["architecture"] = {k: v for k, (v, _) in facts.items()}
        for k, (_, keys) in facts.items():
            citations[f"architecture.{k}"] = {"source_id": source_id, "locator": f"{locator_prefix} {keys}".strip()}
    record["citations"] = citations
    return Candidate(record, notes)


def check_id(kind: str, value: str) -> str | None:
    """A sentence with a fix when value is not a valid id, else None."""
    if len(value) <= ID_MAX and ID_PATTERN.match(value):
        return None
    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:ID_MAX].strip("-")
    hint = f' (for example "{slug}")' if slug else ""
    return f"{kind} {value!r} is not an id: use lower-case letters, digits and single hyphens, at most {ID_MAX} characters{hint}"
