"""from-config and crosscheck: curator tools, run through the real CLI on fixture configs and exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import AS_OF, FIXTURES, REPO, run_cli, valid_package

from pipelines.contrib import from_config

CONFIGS = FIXTURES / "configs"
EXPORTS = FIXTURES / "exports"


def _record(model_id: str, source: str, prefix: str, facts: dict, context: tuple | None = None, update: bool = False) -> dict:
    """The exact record from-config should print: facts as {field: (value, locator keys)}."""
    rec: dict = {"model_id": model_id}
    if update:
        rec["update"] = True
    cites = {}
    if context:
        rec["context_length"] = context[0]
        cites["context_length"] = {"source_id": source, "locator": f"{prefix} {context[1]}"}
    if facts:
        rec["architecture"] = {k: v for k, (v, _) in facts.items()}
        cites.update({f"architecture.{k}": {"source_id": source, "locator": f"{prefix} {keys}"} for k, (_, keys) in facts.items()})
    rec["citations"] = cites
    return rec


GQA = "num_key_value_heads, num_attention_heads"
EXPECTED = {
    "llama-3.1-8b/config.json": (
        {
            "layers": (32, "num_hidden_layers"),
            "hidden_size": (4096, "hidden_size"),
            "attention_heads": (32, "num_attention_heads"),
            "kv_heads": (8, "num_key_value_heads"),
            "vocab_size": (128256, "vocab_size"),
            "attention_type": ("grouped-query", GQA),
            "positional_encoding": ("rope", "rope_theta"),
        },
        (131072, "max_position_embeddings"),
    ),
    "mixtral-8x7b/config.json": (
        {
            "layers": (32, "num_hidden_layers"),
            "hidden_size": (4096, "hidden_size"),
            "attention_heads": (32, "num_attention_heads"),
            "kv_heads": (8, "num_key_value_heads"),
            "vocab_size": (32000, "vocab_size"),
            "attention_type": ("grouped-query", GQA),
            "positional_encoding": ("rope", "rope_theta"),
            "experts_total": (8, "num_local_experts"),
            "experts_active": (2, "num_experts_per_tok"),
        },
        (32768, "max_position_embeddings"),
    ),
    "qwen1.5-moe-a2.7b/config.json": (
        {
            "layers": (24, "num_hidden_layers"),
            "hidden_size": (2048, "hidden_size"),
            "attention_heads": (16, "num_attention_heads"),
            "kv_heads": (16, "num_key_value_heads"),
            "vocab_size": (151936, "vocab_size"),
            "attention_type": ("multi-head", GQA),
            "positional_encoding": ("rope", "rope_theta"),
            "experts_total": (60, "num_experts"),  # routed experts; the shared expert is not counted
            "experts_active": (4, "num_experts_per_tok"),
        },
        (8192, "max_position_embeddings"),
    ),
    "deepseek-v3/config.json": (
        {
            "layers": (61, "num_hidden_layers"),
            "hidden_size": (7168, "hidden_size"),
            "attention_heads": (128, "num_attention_heads"),
            "kv_heads": (128, "num_key_value_heads"),
            "vocab_size": (129280, "vocab_size"),
            "attention_type": ("multi-head-latent", "kv_lora_rank"),
            "positional_encoding": ("rope", "rope_theta"),
            "experts_total": (256, "n_routed_experts"),
            "experts_active": (8, "num_experts_per_tok"),
        },
        (163840, "max_position_embeddings"),
    ),
    # GPT-2 states neither key-value heads nor how positions are encoded, and n_positions is not read as a context length
    "gpt2/config.json": (
        {
            "layers": (12, "n_layer"),
            "hidden_size": (768, "n_embd"),
            "attention_heads": (12, "n_head"),
            "vocab_size": (50257, "vocab_size"),
        },
        None,
    ),
    # T5 counts one stack (num_layers): the network's block count is left to the curator
    "t5-base/config.json": (
        {
            "hidden_size": (768, "d_model"),
            "attention_heads": (12, "num_heads"),
            "vocab_size": (32128, "vocab_size"),
            "positional_encoding": ("relative", "relative_attention_num_buckets"),
        },
        None,
    ),
    # text_config states only the vocabulary and positions; vision_config's layers and heads are not the language model's
    "llava-1.5-7b/config.json": (
        {"vocab_size": (32064, "text_config.vocab_size")},
        (4096, "text_config.max_position_embeddings"),
    ),
    "internvl-chat/config.json": (
        {
            "layers": (28, "llm_config.num_hidden_layers"),
            "hidden_size": (1536, "llm_config.hidden_size"),
            "attention_heads": (12, "llm_config.num_attention_heads"),
            "kv_heads": (2, "llm_config.num_key_value_heads"),
            "vocab_size": (151674, "llm_config.vocab_size"),
            "attention_type": ("grouped-query", "llm_config.num_key_value_heads, llm_config.num_attention_heads"),
            "positional_encoding": ("rope", "llm_config.rope_theta"),
        },
        (32768, "llm_config.max_position_embeddings"),
    ),
    "mixtral-8x22b/params.json": (
        {
            "layers": (56, "n_layers"),
            "hidden_size": (6144, "dim"),  # hidden_dim is the feed-forward width, not read
            "attention_heads": (48, "n_heads"),
            "kv_heads": (8, "n_kv_heads"),
            "vocab_size": (32768, "vocab_size"),
            "attention_type": ("grouped-query", "n_kv_heads, n_heads"),
            "positional_encoding": ("rope", "rope_theta"),
            "experts_total": (8, "moe.num_experts"),
            "experts_active": (2, "moe.num_experts_per_tok"),
        },
        None,
    ),
    # vocab_size -1 means "from the tokenizer": not a count
    "llama-2-7b/params.json": (
        {"layers": (32, "n_layers"), "hidden_size": (4096, "dim"), "attention_heads": (32, "n_heads")},
        None,
    ),
    "falcon-7b/config.json": (
        {
            "layers": (32, "num_hidden_layers"),
            "hidden_size": (4544, "hidden_size"),
            "attention_heads": (71, "num_attention_heads"),
            "kv_heads": (1, "multi_query"),
            "vocab_size": (65024, "vocab_size"),
            "attention_type": ("multi-query", "multi_query"),
        },
        None,
    ),
    # a hybrid of attention and state-space layers: its kv heads do not make the network grouped-query
    "jamba-small/config.json": (
        {
            "layers": (32, "num_hidden_layers"),
            "hidden_size": (4096, "hidden_size"),
            "attention_heads": (32, "num_attention_heads"),
            "kv_heads": (8, "num_key_value_heads"),
            "vocab_size": (65536, "vocab_size"),
            "experts_total": (16, "num_experts"),
            "experts_active": (2, "num_experts_per_tok"),
        },
        (262144, "max_position_embeddings"),
    ),
    "bert-base/config.json": (
        {
            "layers": (12, "num_hidden_layers"),
            "hidden_size": (768, "hidden_size"),
            "attention_heads": (12, "num_attention_heads"),
            "vocab_size": (30522, "vocab_size"),
            "positional_encoding": ("learned-absolute", "position_embedding_type"),
        },
        (512, "max_position_embeddings"),
    ),
}


def _from_config(rel: str, *extra: str, model_id: str = "some-model", source: str = "some-source"):
    return run_cli("from-config", str(CONFIGS / rel), "--model-id", model_id, "--source-id", source, *extra)


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_from_config_prints_exactly_the_stated_facts(rel):
    proc = _from_config(rel)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    facts, context = EXPECTED[rel]
    assert json.loads(lines[0]) == _record("some-model", "some-source", Path(rel).name, facts, context)


def test_from_config_says_what_it_left_out_and_why():
    llava = _from_config("llava-1.5-7b/config.json")
    assert (
        "left out (not stated in the file, or see the notes above): layers, hidden_size, attention_heads, kv_heads, attention_type, positional_encoding"
        in llava.stderr
    )
    t5 = _from_config("t5-base/config.json")
    assert "is_encoder_decoder marks an encoder-decoder (num_layers is 12, no decoder count stated): layers" in t5.stderr
    llama2 = _from_config("llama-2-7b/params.json")
    assert "vocab_size is -1, not a positive count: left out" in llama2.stderr
    jamba = _from_config("jamba-small/config.json")
    assert "attn_layer_period describes state-space or mixed layers: attention_type left out" in jamba.stderr


def test_from_config_prefix_and_update():
    proc = _from_config("gpt2/config.json", "--locator-prefix", "gpt2 model card, config.json", "--update")
    assert proc.returncode == 0, proc.stderr
    facts, _ = EXPECTED["gpt2/config.json"]
    assert json.loads(proc.stdout) == _record("some-model", "some-source", "gpt2 model card, config.json", facts, update=True)


def test_from_config_refuses_bad_input_with_a_located_error(tmp_path):
    broken = tmp_path / "config.json"
    broken.write_text('{\n  "hidden_size": 4096,\n  "num_hidden_layers": ,\n}\n', encoding="utf-8")
    proc = run_cli("from-config", str(broken), "--model-id", "m", "--source-id", "s")
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{broken}:3:24: not valid JSON: Expecting value" in proc.stderr and "fix:" in proc.stderr

    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]\n", encoding="utf-8")
    proc = run_cli("from-config", str(listed), "--model-id", "m", "--source-id", "s")
    assert proc.returncode == 2 and f"{listed}:1:1: the file holds a JSON list, not an object" in proc.stderr

    proc = run_cli("from-config", str(tmp_path / "absent.json"), "--model-id", "m", "--source-id", "s")
    assert proc.returncode == 2 and f"{tmp_path / 'absent.json'}: no such file" in proc.stderr

    proc = _from_config("gpt2/config.json", model_id="GPT 2")
    assert proc.returncode == 2 and "--model-id 'GPT 2' is not an id" in proc.stderr and '(for example "gpt-2")' in proc.stderr

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000, encoding="utf-8")
    proc = run_cli("from-config", str(deep), "--model-id", "m", "--source-id", "s")
    assert proc.returncode == 2 and f"{deep}: the JSON nests too deeply to be a model config" in proc.stderr

    empty = tmp_path / "empty.json"
    empty.write_text('{"model_type": "custom", "vocab_size": "large"}\n', encoding="utf-8")
    proc = run_cli("from-config", str(empty), "--model-id", "m", "--source-id", "s")
    assert proc.returncode == 1 and proc.stdout == ""
    assert 'vocab_size is "large", not a whole number: left out' in proc.stderr
    assert f"error: {empty}: states none of the" in proc.stderr and "fix:" in proc.stderr


def test_from_config_emits_only_schema_fields_and_values():
    """The mapping's targets and derived values exist in schemas/architectures.json (drift check)."""
    schema = json.loads((REPO / "schemas" / "architectures.json").read_text(encoding="utf-8"))
    fields = {f["name"]: f for f in schema["fields"]}
    assert set(from_config.ARCH_ORDER) <= set(fields)
    assert set(from_config.COUNTS) <= set(fields)
    assert set(from_config.POSITION_TYPES.values()) | {"rope", "alibi", "relative"} <= set(fields["positional_encoding"]["constraints"]["enum"])
    emitted = {facts[k][0] for facts, _ in EXPECTED.values() for k in ("attention_type",) if k in facts}
    assert emitted <= set(fields["attention_type"]["constraints"]["enum"])


def _package(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    return valid_package(tmp_path / "pkg")


def _ingest_and_validate(root: Path, records: Path, *extra: str) -> None:
    proc = run_cli("ingest", str(records), "--root", str(root), "--reviewer", "model-atlas-curators", "--date", "2026-11-20", *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run_cli("fmt", "--root", str(root)).returncode == 0
    check = run_cli("validate", "--root", str(root), "--as-of", AS_OF)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_new_model_from_config_ingests_and_validates(tmp_path):
    root = _package(tmp_path)
    proc = _from_config("mixtral-8x7b/config.json", model_id="mixtral-8x7b", source="mistral-mixtral-8x7b-config")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    # what a curator adds before ingesting: the row's identity, classes and review
    record.update(
        name="Mixtral 8x7B",
        kind="model",
        organization="Mistral AI",
        summary="A sparse mixture-of-experts decoder with eight experts per layer.",
        classes=["mixture-of-experts"],
        confidence="medium",
        note="Read the architecture from the published config.",
    )
    record["citations"]["*"] = {"source_id": "mistral-mixtral-8x7b-config", "locator": "config.json"}
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps(record) + "\n", encoding="utf-8")
    sources = tmp_path / "sources.jsonl"
    source = {
        "source_id": "mistral-mixtral-8x7b-config",
        "url": "https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json",
        "title": "Mixtral-8x7B-v0.1 config.json",
        "publisher": "Mistral AI",
        "kind": "model-card",
        "tier": "primary",
    }
    sources.write_text(json.dumps(source) + "\n", encoding="utf-8")
    _ingest_and_validate(root, records, "--sources", str(sources))
    data = root / "data"
    assert "mixtral-8x7b,32,4096,32,8,32000,grouped-query,rope,8,2\n" in (data / "architectures.csv").read_text(encoding="utf-8")
    citations = (data / "citations.csv").read_text(encoding="utf-8")
    assert "architectures,mixtral-8x7b,experts_total,mistral-mixtral-8x7b-config,config.json num_local_experts\n" in citations
    assert "models,mixtral-8x7b,context_length,mistral-mixtral-8x7b-config,config.json max_position_embeddings\n" in citations


def test_an_update_from_config_fills_the_empty_architecture_facts(tmp_path):
    root = _package(tmp_path)
    proc = _from_config("sparse-8x1b/config.json", "--update", model_id="sparse-8x1b", source="example-paper")
    assert proc.returncode == 0, proc.stderr
    records = tmp_path / "update.jsonl"
    records.write_text(proc.stdout, encoding="utf-8")
    _ingest_and_validate(root, records)
    arch = (root / "data" / "architectures.csv").read_text(encoding="utf-8")
    assert "sparse-8x1b,16,2048,16,4,32000,grouped-query,rope,8,2\n" in arch
    # a config that disagrees with a stated value is a conflict, never an overwrite
    other = _from_config("mixtral-8x7b/config.json", "--update", model_id="sparse-8x1b", source="example-paper")
    records.write_text(other.stdout, encoding="utf-8")
    proc = run_cli("ingest", str(records), "--root", str(root), "--reviewer", "model-atlas-curators")
    assert proc.returncode == 1
    assert "architecture of sparse-8x1b.layers is '16', the record says 32" in proc.stdout
    assert "sparse-8x1b,16,2048,16,4,32000,grouped-query,rope,8,2\n" in (root / "data" / "architectures.csv").read_text(encoding="utf-8")


# ---- crosscheck ----------------------------------------------------------------------------------

HEADER = "| atlas model_id | other id | field | atlas value | other value | atlas cites a primary source |\n|---|---|---|---|---|---|\n"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_crosscheck_models_dev_records(tmp_path):
    root = _package(tmp_path)
    # one fact cited only by a seed note, one not cited at all
    _edit(root / "data/citations.csv", "models,dense-7b,knowledge_cutoff,example-paper,Section 3", "models,dense-7b,knowledge_cutoff,seed-000,note 3")
    _edit(root / "data/citations.csv", "models,sparse-8x1b,context_length,example-paper,Table 2\n", "")
    export = EXPORTS / "models-dev.json"
    proc = run_cli("crosscheck", str(export), "--root", str(root))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == (
        "## Disagreements with models-dev.json\n\n" + HEADER + "| dense-7b | dense-7b | knowledge_cutoff | 2023-12 | 2024-01 | secondary only |\n"
        "| sparse-8x1b | sparse-8x1b-instruct | context_length | 32768 | 65536 | no citation |\n"
        "\n2 disagreement(s), 7 agreeing fact(s); 2 fact(s) the export states and the atlas leaves empty.\n"
        "Unmatched: 1 of 3 atlas row(s), 2 of 4 export entries (an --aliases file matches ids that differ).\n"
    )
    with_aliases = run_cli("crosscheck", str(export), "--root", str(root), "--aliases", str(EXPORTS / "aliases.csv"))
    assert with_aliases.returncode == 1
    assert "| dense-7b | ex/dense-7b-chat | release_date | 2024-01-15 | 2024-02 | yes |\n" in with_aliases.stdout
    assert "Unmatched: 1 of 3 atlas row(s), 1 of 4 export entries" in with_aliases.stdout


def test_crosscheck_reads_the_models_dev_api_file_and_lists_unmatched_ids(tmp_path):
    root = _package(tmp_path)
    api = {
        "example": {"id": "example", "name": "Example", "models": {"dense-7b": {"id": "dense-7b", "name": "Dense 7B", "limit": {"context": 4096}}}},
        "other": {"id": "other", "name": "Other", "models": {"acme-9": {"id": "acme-9", "name": "Acme 9", "limit": {"context": 1000}}}},
    }
    export = tmp_path / "api.json"
    export.write_text(json.dumps(api), encoding="utf-8")
    proc = run_cli("crosscheck", str(export), "--root", str(root), "--list-unmatched")
    assert proc.returncode == 1, proc.stderr
    assert "| dense-7b | example/dense-7b | context_length | 8192 | 4096 | yes |\n" in proc.stdout
    assert proc.stdout.endswith(
        "Unmatched: 2 of 3 atlas row(s), 1 of 2 export entries (an --aliases file matches ids that differ).\n"
        "\nAtlas rows with no match:\n\n- assistant-app\n- sparse-8x1b\n"
        "\nExport entries with no match:\n\n- other/acme-9\n"
    )


def test_crosscheck_litellm_map(tmp_path):
    root = _package(tmp_path)
    _edit(root / "data/models.csv", ",8192,true,,2023-12,", ",8192,true,4096,2023-12,")
    export = EXPORTS / "litellm.json"
    proc = run_cli("crosscheck", str(export), "--root", str(root))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == (
        "## Disagreements with litellm.json\n\n" + HEADER + "| dense-7b | example/dense-7b | max_output_tokens (max_tokens) | 4096 | 2048 | no citation |\n"
        "| sparse-8x1b | example/sparse-8x1b | context_length | 32768 | 32000 | yes |\n"
        "\n2 disagreement(s), 2 agreeing fact(s); 1 fact(s) the export states and the atlas leaves empty.\n"
        "Unmatched: 1 of 3 atlas row(s), 1 of 4 export entries (an --aliases file matches ids that differ).\n"
        "\nNot compared:\n\n"
        f"- {export}:$[\"example/dense-7b\"].max_input_tokens: 'lots' cannot be read as integer; not compared\n"
    )


def test_crosscheck_csv_with_mapped_columns(tmp_path):
    root = _package(tmp_path)
    export = EXPORTS / "catalog.csv"
    maps = ["--map", "name=Model", "--map", "release_date=Publication date", "--map", "context_length=Context"]
    proc = run_cli("crosscheck", str(export), "--root", str(root), *maps, "--map", "params_total=Parameters")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == (
        "## Disagreements with catalog.csv\n\n" + HEADER + "| sparse-8x1b | Sparse 8x1B | params_total | 6000000000 | 6.2e9 | yes |\n"
        "\n1 disagreement(s), 5 agreeing fact(s); 0 fact(s) the export states and the atlas leaves empty.\n"
        "Unmatched: 1 of 3 atlas row(s), 1 of 3 export entries (an --aliases file matches ids that differ).\n"
    )
    # month-precision dates agree with a full date in that month; no disagreement is exit 0
    proc = run_cli("crosscheck", str(export), "--root", str(root), *maps)
    assert proc.returncode == 0 and "No disagreements.\n\n0 disagreement(s), 4 agreeing fact(s)" in proc.stdout


def test_crosscheck_counts_a_repeated_export_row_once(tmp_path):
    """Attack round 4: an export listing a model twice counted its agreements and disagreements twice."""
    root = _package(tmp_path)
    lines = (EXPORTS / "catalog.csv").read_text(encoding="utf-8").splitlines()
    export = tmp_path / "catalog.csv"
    export.write_text("\n".join([*lines, lines[2], lines[2]]) + "\n", encoding="utf-8")
    maps = ["--map", "name=Model", "--map", "release_date=Publication date", "--map", "context_length=Context", "--map", "params_total=Parameters"]
    proc = run_cli("crosscheck", str(export), "--root", str(root), *maps)
    assert proc.returncode == 1, proc.stderr
    assert "\n1 disagreement(s), 5 agreeing fact(s);" in proc.stdout
    assert f"{export}:5: repeats the entry at {export}:3; counted once" in proc.stdout.replace("\\", "")
    assert "1 of 5 export entries" in proc.stdout  # the entries as listed; the repeats are noted below


def test_crosscheck_refuses_unusable_input_with_a_located_error(tmp_path):
    root = _package(tmp_path)
    csv_export = EXPORTS / "catalog.csv"
    proc = run_cli("crosscheck", str(csv_export), "--root", str(root), "--map", "name=Title")
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{csv_export}:1: --map name=Title: no column 'Title' in the header" in proc.stderr
    assert "fix: use one of: Model, Organization, Publication date, Parameters, Context" in proc.stderr

    proc = run_cli("crosscheck", str(csv_export), "--root", str(root), "--map", "size=Parameters")
    assert proc.returncode == 2 and "'size' is not an atlas field; use id, name or one of: release_date," in proc.stderr

    proc = run_cli("crosscheck", str(csv_export), "--root", str(root))
    assert proc.returncode == 2 and f"{csv_export}:1: no column names the models" in proc.stderr and "--map id=COLUMN" in proc.stderr

    broken = tmp_path / "export.json"
    broken.write_text('[\n  {"id": "dense-7b",\n   "limit": {"context": 8192}\n]\n', encoding="utf-8")
    proc = run_cli("crosscheck", str(broken), "--root", str(root))
    assert proc.returncode == 2 and f"{broken}:4:1: not valid JSON" in proc.stderr

    odd = tmp_path / "export.json"
    odd.write_text('[{"id": "dense-7b"}, "gpt-4o"]\n', encoding="utf-8")
    proc = run_cli("crosscheck", str(odd), "--root", str(root))
    assert proc.returncode == 2 and f"{odd}:$[1]: a model record must be a JSON object, not str" in proc.stderr

    aliases = tmp_path / "aliases.csv"
    aliases.write_text("other_id,model_id\nex/dense-7b-chat,dense-7\n", encoding="utf-8")
    proc = run_cli("crosscheck", str(EXPORTS / "models-dev.json"), "--root", str(root), "--aliases", str(aliases))
    assert proc.returncode == 2 and "alias 'ex/dense-7b-chat' points at 'dense-7', which is not a model_id in models" in proc.stderr

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000, encoding="utf-8")
    proc = run_cli("crosscheck", str(deep), "--root", str(root))
    assert proc.returncode == 2 and f"{deep}: the JSON nests too deeply to be a catalog export" in proc.stderr

    unknown = tmp_path / "export.txt"
    unknown.write_text("x\n", encoding="utf-8")
    proc = run_cli("crosscheck", str(unknown), "--root", str(root))
    assert proc.returncode == 2 and "add --format csv or --format json" in proc.stderr
