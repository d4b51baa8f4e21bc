"""Spec validation: every error names the file, the table, the key and what is allowed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pgvbench.errors import SpecError
from pgvbench.metrics import Metric
from pgvbench.spec.model import ExperimentSpec
from pgvbench.spec.parse import load_spec, parse_spec
from support import write_toml

WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"

BASE: dict[str, Any] = {
    "experiment": {"name": "spec_test", "seed": 1},
    "dataset": {"source": "synthetic", "n": 1000, "dim": 8, "metric": "l2", "queries": 200},
    "query": {"k": 10, "measure_seconds": 1.0},
    "index": [
        {"kind": "none"},
        {"kind": "ivfflat", "lists": 20, "probes": [1, 4]},
        {"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [10, 40]},
    ],
}


def _spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(changes))
    return data


def _hnsw(**params: Any) -> dict[str, Any]:
    return _spec(index=[{"kind": "hnsw", **params}])


def _ivfflat(**params: Any) -> dict[str, Any]:
    return _spec(index=[{"kind": "ivfflat", **params}])


def _error(tmp_path: Path, data: dict[str, Any]) -> str:
    """Write ``data`` as a spec file, load it, and return the SpecError message."""
    path = write_toml(tmp_path / "bad_spec.toml", data)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message  # every message names the file
    return message


def _parse_error(tmp_path: Path, data: dict[str, Any]) -> str:
    """Like _error, for values the minimal TOML writer cannot spell (e.g. newlines)."""
    source = tmp_path / "bad_spec.toml"
    with pytest.raises(SpecError) as info:
        parse_spec(data, source=source)
    message = str(info.value)
    assert message.startswith(f"{source}: "), message
    return message


def _load(tmp_path: Path, data: dict[str, Any]) -> ExperimentSpec:
    return load_spec(write_toml(tmp_path / "spec.toml", data))


# --------------------------------------------------------------------------- good specs


def test_shipped_workloads_all_parse() -> None:
    files = sorted(WORKLOADS.glob("*.toml"))
    assert files, f"no workload files in {WORKLOADS}"
    for path in files:
        spec = load_spec(path)
        assert spec.source_path == path
        # a tuning or capacity spec lists no [[index]]: the tuner proposes its own builds,
        # the capacity sweep builds its own at every level
        assert spec.indexes or {"tune", "capacity"} & set(spec.study_specs), path
        for index in spec.indexes:
            # every index kind but the exact scan sweeps a query-time parameter, unless the
            # spec leaves it to the server (ef_search/probes = "server")
            raw = next((r for r in spec.raw.get("index", []) if r.get("kind") == index.kind), {})
            to_server = "server" in (raw.get("ef_search"), raw.get("probes"))
            expected_none = index.kind == "none" or to_server
            assert (index.sweep_param is None) == expected_none, (path, index)


def test_server_valued_query_parameter_leaves_it_unset(tmp_path: Path) -> None:
    data = {
        "experiment": {"name": "srv"},
        "dataset": {"source": "synthetic", "n": 100, "dim": 4},
        "index": [
            {"kind": "hnsw", "ef_search": "server"},
            {"kind": "ivfflat", "lists": 10, "probes": "server"},
        ],
    }
    spec = load_spec(write_toml(tmp_path / "srv.toml", data))
    assert [(ix.sweep_param, ix.sweep_values) for ix in spec.indexes] == [(None, ())] * 2
    data["index"] = [{"kind": "hnsw", "ef_search": "sever"}]
    with pytest.raises(SpecError, match="ef_search"):
        load_spec(write_toml(tmp_path / "typo.toml", data))


def test_repeats_is_validated(tmp_path: Path) -> None:
    data = {
        "experiment": {"name": "rep", "repeats": 0},
        "dataset": {"source": "synthetic", "n": 100, "dim": 4},
        "index": [{"kind": "hnsw"}],
    }
    with pytest.raises(SpecError, match=r"\[experiment\] repeats = 0 is below the minimum 1"):
        load_spec(write_toml(tmp_path / "rep.toml", data))
    data["experiment"]["repeats"] = 5
    assert load_spec(write_toml(tmp_path / "rep.toml", data)).repeats == 5


def test_quickstart_resolves_as_documented() -> None:
    spec = load_spec(WORKLOADS / "quickstart.toml")
    assert spec.name == "quickstart"
    assert spec.schema == "pgvbench"
    assert spec.dataset.metric is Metric.L2
    assert [ix.label for ix in spec.indexes] == [
        "none",
        "ivfflat(lists=50)",
        "ivfflat(lists=200)",
        "hnsw(m=8,ef_construction=32)",
        "hnsw(m=16,ef_construction=64)",
    ]
    assert spec.server.settings["max_parallel_maintenance_workers"] == "1"


def test_defaults_fill_optional_tables(tmp_path: Path) -> None:
    data = _spec()
    del data["query"]
    spec = _load(tmp_path, data)
    assert spec.query.k == 10
    assert spec.query.target_recall == 0.95
    assert spec.schema == "pgvbench"
    assert dict(spec.server.settings) == {}


def test_server_settings_are_stringified(tmp_path: Path) -> None:
    spec = _load(
        tmp_path,
        _spec(server={"settings": {"work_mem": "64MB", "jit": False, "random_page_cost": 1.1}}),
    )
    assert dict(spec.server.settings) == {
        "work_mem": "64MB",
        "jit": "off",
        "random_page_cost": "1.1",
    }


# --------------------------------------------------------------------------- unknown keys


def test_unknown_dataset_key_suggests_the_close_match(tmp_path: Path) -> None:
    data = _spec()
    data["dataset"]["dimm"] = 8
    message = _error(tmp_path, data)
    assert "bad_spec.toml" in message
    assert "[dataset]" in message
    assert "dimm" in message
    assert "did you mean 'dim'" in message
    assert (
        "Allowed keys: source, metric, distribution, n, dim, clusters, spread, "
        "intrinsic_dim, queries, size_skew, scale_spread, tail_dof, labels." in message
    )


def test_unknown_key_without_close_match_lists_allowed_keys(tmp_path: Path) -> None:
    data = _spec()
    data["query"]["zzzzzz"] = 1
    message = _error(tmp_path, data)
    assert "[query] zzzzzz is not a known key" in message
    assert "did you mean" not in message
    # the sentence ends before the list starts
    assert "is not a known key. Allowed keys: k, recall_queries," in message


def test_unknown_top_level_table(tmp_path: Path) -> None:
    data = _spec(sever={"settings": {"work_mem": "1MB"}})
    message = _error(tmp_path, data)
    assert "sever" in message
    assert "did you mean 'server'" in message
    assert "experiment, query, server, index, load, dataset" in message


def test_unknown_hnsw_key(tmp_path: Path) -> None:
    message = _error(tmp_path, _hnsw(m=8, ef_construction=32, ef_serch=[10]))
    assert "[index.hnsw]" in message
    assert "ef_serch" in message
    assert "did you mean 'ef_search'" in message
    assert "Allowed keys: kind, m, ef_construction, ef_search." in message


def test_ivfflat_key_on_hnsw_index_is_refused(tmp_path: Path) -> None:
    message = _error(tmp_path, _hnsw(probes=[1, 2]))
    assert "[index.hnsw] probes is not a known key" in message
    assert "Allowed keys: kind, m, ef_construction, ef_search." in message


def test_exact_scan_takes_no_parameters(tmp_path: Path) -> None:
    message = _error(tmp_path, _spec(index=[{"kind": "none", "lists": 10}]))
    assert "[index.none] lists is not a known key" in message
    assert "Allowed keys: kind." in message


def test_unknown_experiment_key(tmp_path: Path) -> None:
    data = _spec()
    data["experiment"]["seeed"] = 3
    message = _error(tmp_path, data)
    assert "[experiment] seeed" in message
    assert "did you mean 'seed'" in message
    assert "Allowed keys: name, seed, schema, kind, repeats." in message


# --------------------------------------------------------------------------- out of range


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_hnsw(m=1), "[index.hnsw] m = 1 is below the minimum 2"),
        (_hnsw(m=101, ef_construction=400), "[index.hnsw] m = 101 is above the maximum 100"),
        (_hnsw(ef_search=1001), "[index.hnsw] ef_search = 1001 is above the maximum 1000"),
        (_hnsw(ef_search=[10, 0]), "[index.hnsw] ef_search = 0 is below the minimum 1"),
        (
            _hnsw(ef_construction=1001),
            "[index.hnsw] ef_construction = 1001 is above the maximum 1000",
        ),
        (_ivfflat(lists=0), "[index.ivfflat] lists = 0 is below the minimum 1"),
        (_ivfflat(lists=32769), "[index.ivfflat] lists = 32769 is above the maximum 32768"),
        (_ivfflat(lists=8, probes=[0]), "[index.ivfflat] probes = 0 is below the minimum 1"),
        (_spec(query={"k": 0}), "[query] k = 0 is below the minimum 1"),
        (_spec(query={"k": 101}), "[query] k = 101 is above the maximum 100"),
        (
            _spec(query={"measure_seconds": -1.0}),
            "[query] measure_seconds = -1.0 is below the minimum 0.1",
        ),
        (
            _spec(query={"warmup_seconds": -0.5}),
            "[query] warmup_seconds = -0.5 is below the minimum 0.0",
        ),
        (
            _spec(query={"target_recall": 1.5}),
            "[query] target_recall = 1.5 is above the maximum 1.0",
        ),
        (
            _spec(dataset={"source": "synthetic", "n": 0, "dim": 8}),
            "[dataset] n = 0 is below the minimum 1",
        ),
        (
            _spec(dataset={"source": "synthetic", "n": 10, "dim": 16001}),
            "[dataset] dim = 16001 is above the maximum 16000",
        ),
        (
            _spec(dataset={"source": "synthetic", "n": 10, "dim": 8, "intrinsic_dim": 9}),
            "[dataset] intrinsic_dim = 9 is above the maximum 8",
        ),
        (
            _spec(experiment={"name": "x", "seed": -1}),
            "[experiment] seed = -1 is below the minimum 0",
        ),
    ],
)
def test_out_of_range(tmp_path: Path, data: dict[str, Any], expected: str) -> None:
    assert expected in _error(tmp_path, data)


def test_ef_construction_must_be_twice_m(tmp_path: Path) -> None:
    message = _error(tmp_path, _hnsw(m=16, ef_construction=31))
    assert "[index.hnsw] ef_construction = 31 must be at least 2 * m = 32" in message
    # the boundary itself is fine
    spec = _load(tmp_path, _hnsw(m=16, ef_construction=32))
    assert dict(spec.indexes[0].params) == {"m": 16, "ef_construction": 32}


def test_probes_above_lists(tmp_path: Path) -> None:
    message = _error(tmp_path, _ivfflat(lists=10, probes=[1, 11]))
    assert "[index.ivfflat] probes value 11 exceeds lists = 10" in message
    # probes = lists (an exhaustive scan) is allowed
    assert _load(tmp_path, _ivfflat(lists=10, probes=[10])).indexes[0].sweep_values == (10,)


@pytest.mark.parametrize("key", ["measure_seconds", "warmup_seconds", "target_recall"])
@pytest.mark.parametrize("value", ["inf", "nan"])
def test_non_finite_numbers_are_refused(tmp_path: Path, key: str, value: str) -> None:
    # TOML has inf and nan literals; inf seconds would measure forever, nan passes
    # every < / > bound check unless refused explicitly.
    path = tmp_path / "nonfinite.toml"
    path.write_text(
        '[experiment]\nname = "x"\n'
        '[dataset]\nsource = "synthetic"\nn = 100\ndim = 4\n'
        f"[query]\n{key} = {value}\n"
        '[[index]]\nkind = "none"\n'
    )
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [query] {key} = {value}")
    assert "finite" in message


def test_statement_timeout_fits_postgres(tmp_path: Path) -> None:
    # statement_timeout is an int (ms) in PostgreSQL: larger values fail at SET time,
    # long after validation, so the spec must refuse them.
    message = _error(tmp_path, _spec(query={"statement_timeout_ms": 10**12}))
    assert "[query] statement_timeout_ms = 1000000000000 is above the maximum 2147483647" in (
        message
    )


# --------------------------------------------------------------------------- wrong types


def test_integer_given_as_string(tmp_path: Path) -> None:
    data = _spec()
    data["dataset"]["n"] = "big"
    message = _error(tmp_path, data)
    assert "[dataset] n = 'big' must be an integer" in message


def test_boolean_is_not_an_integer(tmp_path: Path) -> None:
    message = _error(tmp_path, _hnsw(m=True))
    assert "[index.hnsw] m = True must be an integer" in message


def test_ef_search_list_with_a_string(tmp_path: Path) -> None:
    message = _error(tmp_path, _hnsw(ef_search=[10, "x"]))
    assert "[index.hnsw] ef_search contains 'x'; it must be an integer 1..1000" in message


def test_empty_sweep_list(tmp_path: Path) -> None:
    message = _error(tmp_path, _ivfflat(probes=[]))
    assert "[index.ivfflat] probes = [] must be an integer 1..32768, a list of them" in message


def test_number_given_as_string(tmp_path: Path) -> None:
    message = _error(tmp_path, _spec(query={"measure_seconds": "3s"}))
    assert "[query] measure_seconds = '3s' must be a number" in message


def test_unknown_metric_lists_allowed_values(tmp_path: Path) -> None:
    data = _spec()
    data["dataset"]["metric"] = "euclid"
    message = _error(tmp_path, data)
    assert "[dataset] metric = 'euclid' is not one of: l2, cosine, ip" in message


def test_unknown_index_kind_lists_allowed_kinds(tmp_path: Path) -> None:
    message = _error(tmp_path, _spec(index=[{"kind": "none"}, {"kind": "diskann"}]))
    assert "[index #2] kind = 'diskann' is not one of: none, ivfflat, hnsw" in message


def test_unknown_dataset_source(tmp_path: Path) -> None:
    message = _error(tmp_path, _spec(dataset={"source": "csv"}))
    assert "[dataset] source = 'csv' is not one of: synthetic, hdf5, npy, parquet, table" in message


def test_server_settings_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        '[experiment]\nname = "x"\n'
        '[dataset]\nsource = "synthetic"\nn = 100\ndim = 4\n'
        '[server]\nsettings = "work_mem=1MB"\n'
        '[[index]]\nkind = "none"\n'
    )
    with pytest.raises(SpecError, match=r"\[server\] settings must be a table of name = value"):
        load_spec(path)


def test_server_setting_with_a_list_value(tmp_path: Path) -> None:
    message = _error(tmp_path, _spec(server={"settings": {"work_mem": [1, 2]}}))
    assert "[server] settings.work_mem must be a string, number or boolean" in message


@pytest.mark.parametrize("name", ["Work_Mem", "work mem", "work_mem\n", "1x"])
def test_server_setting_name_must_be_a_setting_name(tmp_path: Path, name: str) -> None:
    message = _parse_error(tmp_path, _spec(server={"settings": {name: "1MB"}}))
    assert f"[server] settings.{name} is not a PostgreSQL setting name" in message


# --------------------------------------------------------------------------- missing / names


def test_missing_dataset_table(tmp_path: Path) -> None:
    data = _spec()
    del data["dataset"]
    assert "missing required table [dataset]" in _error(tmp_path, data)


def test_missing_index_tables(tmp_path: Path) -> None:
    data = _spec()
    del data["index"]
    message = _error(tmp_path, data)
    assert "at least one [[index]] table is required" in message
    assert 'kind = "hnsw"' in message  # shows an example to copy


def test_missing_experiment_name(tmp_path: Path) -> None:
    data = _spec()
    del data["experiment"]
    assert "[experiment] name is required" in _error(tmp_path, data)
    data["experiment"] = {"seed": 3}
    assert "[experiment] name is required" in _error(tmp_path, data)


def test_missing_index_kind(tmp_path: Path) -> None:
    message = _error(tmp_path, _spec(index=[{"m": 16}]))
    assert "[index #1] kind is required" in message


def test_missing_npy_queries_file(tmp_path: Path) -> None:
    data = _spec(dataset={"source": "npy", "metric": "l2", "base": "base.npy"})
    assert "[dataset] queries_file is required" in _error(tmp_path, data)


def test_npy_metric_is_required(tmp_path: Path) -> None:
    data = _spec(dataset={"source": "npy", "base": "b.npy", "queries_file": "q.npy"})
    assert "[dataset] metric is required" in _error(tmp_path, data)


@pytest.mark.parametrize(
    "name",
    ["Quickstart", "my run", "1st", "_x", "a-b", "x" * 41, "", "run\n", "ok\nname"],
)
def test_invalid_experiment_name(tmp_path: Path, name: str) -> None:
    message = _parse_error(tmp_path, _spec(experiment={"name": name}))
    assert f"[experiment] name = {name!r} must be lowercase letters, digits and _" in message
    assert "at most 40 characters" in message


def test_longest_valid_name(tmp_path: Path) -> None:
    assert _load(tmp_path, _spec(experiment={"name": "a" * 40})).name == "a" * 40


@pytest.mark.parametrize("schema", ["Public", "my schema", "s;drop", "s\n"])
def test_invalid_schema_name(tmp_path: Path, schema: str) -> None:
    message = _parse_error(tmp_path, _spec(experiment={"name": "x", "schema": schema}))
    assert f"[experiment] schema = {schema!r} must be a plain lowercase identifier" in message


def test_table_given_as_scalar(tmp_path: Path) -> None:
    path = tmp_path / "scalar.toml"
    path.write_text('experiment = "x"\n')
    with pytest.raises(SpecError, match=r"scalar\.toml: \[experiment\] must be a table"):
        load_spec(path)


# --------------------------------------------------------------------------- dataset files


def test_hdf5_metric_key_is_refused(tmp_path: Path) -> None:
    data = _spec(dataset={"source": "hdf5", "path": "glove.hdf5", "metric": "cosine"})
    message = _error(tmp_path, data)
    assert "[dataset] metric is read from the HDF5 file's 'distance' attribute" in message
    assert "remove it" in message


def test_hdf5_rejects_synthetic_keys(tmp_path: Path) -> None:
    data = _spec(dataset={"source": "hdf5", "path": "x.hdf5", "n": 100})
    message = _error(tmp_path, data)
    assert "[dataset] n is not a known key" in message
    assert "Allowed keys: source, metric, path, queries, attributes, query_attributes." in message


def test_relative_paths_resolve_against_the_spec_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_dir = tmp_path / "specs" / "nested"
    spec_dir.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter

    hdf5 = load_spec(
        write_toml(
            spec_dir / "h.toml",
            _spec(
                dataset={"source": "hdf5", "path": "../data/glove.hdf5", "queries": 100},
                query={"k": 10, "recall_queries": 100},  # the 100 test rows measure recall
            ),
        )
    )
    assert hdf5.dataset.path == spec_dir / "../data/glove.hdf5"
    assert hdf5.dataset.path.resolve() == (tmp_path / "specs" / "data" / "glove.hdf5")
    assert hdf5.dataset.queries == 100

    absolute = tmp_path / "abs" / "base.npy"
    npy = load_spec(
        write_toml(
            spec_dir / "n.toml",
            _spec(
                dataset={
                    "source": "npy",
                    "metric": "cosine",
                    "base": str(absolute),
                    "queries_file": "q.npy",
                }
            ),
        )
    )
    assert npy.dataset.base == absolute  # absolute paths are kept
    assert npy.dataset.queries_file == spec_dir / "q.npy"
    assert npy.dataset.metric is Metric.COSINE


# --------------------------------------------------------------------------- file problems


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[experiment]\nname = "x\n')
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 2" in message  # the parser's position is kept


def test_missing_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: spec file not found"


def test_spec_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: cannot read spec file")


# --------------------------------------------------------------------------- index lists


def test_duplicate_index_builds(tmp_path: Path) -> None:
    data = _spec(
        index=[
            {"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [10]},
            {"kind": "none"},
            {"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [40]},
        ]
    )
    message = _error(tmp_path, data)
    assert "[[index]] builds are listed twice: hnsw(m=8,ef_construction=32)" in message


def test_defaults_make_a_duplicate_too(tmp_path: Path) -> None:
    # m = 16, ef_construction = 64 are the defaults, so these are the same build
    data = _spec(index=[{"kind": "hnsw"}, {"kind": "hnsw", "m": 16, "ef_construction": 64}])
    assert "listed twice: hnsw(m=16,ef_construction=64)" in _error(tmp_path, data)


def test_sweep_values_deduplicated_and_sorted(tmp_path: Path) -> None:
    spec = _load(tmp_path, _hnsw(ef_search=[80, 10, 40, 10, 80]))
    assert spec.indexes[0].sweep_values == (10, 40, 80)
    assert spec.indexes[0].sweep_param == "hnsw.ef_search"


def test_single_int_is_a_one_value_list(tmp_path: Path) -> None:
    spec = _load(tmp_path, _spec(index=[{"kind": "hnsw", "ef_search": 64}, _ivf(probes=3)]))
    assert spec.indexes[0].sweep_values == (64,)
    assert spec.indexes[1].sweep_values == (3,)
    assert spec.indexes[1].sweep_param == "ivfflat.probes"


def _ivf(**params: Any) -> dict[str, Any]:
    return {"kind": "ivfflat", "lists": 10, **params}


def test_index_defaults(tmp_path: Path) -> None:
    spec = _load(tmp_path, _spec(index=[{"kind": "hnsw"}, {"kind": "ivfflat"}, {"kind": "none"}]))
    hnsw, ivf, none = spec.indexes
    assert hnsw.label == "hnsw(m=16,ef_construction=64)"
    assert hnsw.sweep_values == (40,)
    assert ivf.label == "ivfflat(lists=100)"
    assert ivf.sweep_values == (1,)
    assert none.label == "none"
    assert none.sweep_param is None and none.sweep_values == ()


# --------------------------------------------------------------------------- to_dict


def test_to_dict_is_json_and_round_trips_labels(tmp_path: Path) -> None:
    data = _spec(server={"settings": {"work_mem": "64MB"}})
    spec = _load(tmp_path, data)
    resolved = json.loads(json.dumps(spec.to_dict()))

    assert resolved["name"] == "spec_test"
    assert resolved["source_path"] == str(tmp_path / "spec.toml")
    assert resolved["dataset"]["metric"] == "l2"
    assert resolved["server"] == {"settings": {"work_mem": "64MB"}, "sweep": []}
    assert [ix["label"] for ix in resolved["indexes"]] == [ix.label for ix in spec.indexes]
    assert resolved["indexes"][2] == {
        "kind": "hnsw",
        "label": "hnsw(m=8,ef_construction=32)",
        "params": {"m": 8, "ef_construction": 32},
        "sweep_param": "hnsw.ef_search",
        "sweep_values": [10, 40],
    }

    # a spec rebuilt from the recorded indexes describes the same builds and sweeps
    rebuilt_indexes = []
    for ix in resolved["indexes"]:
        table: dict[str, Any] = {"kind": ix["kind"], **ix["params"]}
        if ix["sweep_param"]:
            table[ix["sweep_param"].split(".")[1]] = ix["sweep_values"]
        rebuilt_indexes.append(table)
    rebuilt = parse_spec(_spec(index=rebuilt_indexes))
    assert [(ix.label, ix.sweep_values) for ix in rebuilt.indexes] == [
        (ix.label, ix.sweep_values) for ix in spec.indexes
    ]


def test_to_dict_of_file_datasets_is_json(tmp_path: Path) -> None:
    spec = _load(
        tmp_path,
        _spec(dataset={"source": "npy", "metric": "ip", "base": "b.npy", "queries_file": "q.npy"}),
    )
    resolved = json.loads(json.dumps(spec.to_dict()))
    assert resolved["dataset"]["base"] == str(tmp_path / "b.npy")
    assert resolved["dataset"]["queries_file"] == str(tmp_path / "q.npy")
    assert resolved["dataset"]["metric"] == "ip"


def test_parse_spec_without_a_file_says_so() -> None:
    data = _spec()
    data["dataset"]["dimm"] = 3
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert str(info.value).startswith("<spec>: [dataset] dimm")


@pytest.mark.parametrize("value", [0, 0.0])
def test_target_recall_must_be_above_zero(tmp_path: Path, value: float) -> None:
    # report --target-recall refuses 0 too: the spec must agree with the CLI
    message = _error(tmp_path, _spec(query={"target_recall": value}))
    assert "[query] target_recall = 0.0 must be in (0, 1]" in message
    assert _load(tmp_path, _spec(query={"target_recall": 1.0})).query.target_recall == 1.0


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            _hnsw(ef_search="fast"),
            "[index.hnsw] ef_search = 'fast' must be an integer 1..1000, a list of them, "
            'or "server"',
        ),
        (
            _ivfflat(lists=10, probes="all"),
            "[index.ivfflat] probes = 'all' must be an integer 1..32768, a list of them, "
            'or "server"',
        ),
    ],
)
def test_sweep_key_type_error_lists_server(
    tmp_path: Path, data: dict[str, Any], expected: str
) -> None:
    # "server" is an allowed value: a message that omits it hides the option
    assert expected in _error(tmp_path, data)


# --------------------------------------------------------------------------- server settings

MANAGED = [
    "port",
    "listen_addresses",
    "unix_socket_directories",
    "data_directory",
    "hba_file",
    "ident_file",
    "config_file",
    "external_pid_file",
    "logging_collector",
    "log_directory",
    "log_filename",
    "unix_socket_permissions",
    "unix_socket_group",
]


@pytest.mark.parametrize("name", MANAGED)
def test_managed_server_settings_are_refused(tmp_path: Path, name: str) -> None:
    # port = 5999 moved the embedded server where pgvbench could not find it again
    message = _error(tmp_path, _spec(server={"settings": {name: "5999"}}))
    assert f"[server.settings] {name} is managed by pgvbench for its embedded server" in message
    assert message.endswith("; remove it")


def test_managed_setting_in_a_sweep_entry_is_refused(tmp_path: Path) -> None:
    data = _spec(server={"sweep": [{"work_mem": "4MB"}, {"port": 5999}]})
    message = _error(tmp_path, data)
    assert "[server.sweep #2] port is managed by pgvbench" in message
    assert "picks a free port" in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("hnsw.ef_search", 5000, "must be an integer 1..1000"),
        ("hnsw.ef_search", 0, "must be an integer 1..1000"),
        ("hnsw.ef_search", "many", "must be an integer 1..1000"),
        ("ivfflat.probes", 40000, "must be an integer 1..32768"),
        ("hnsw.max_scan_tuples", 0, "must be an integer 1..2147483647"),
        ("ivfflat.max_probes", 0, "must be an integer 1..32768"),
        ("hnsw.iterative_scan", "on", "use one of off, strict_order, relaxed_order"),
        ("ivfflat.iterative_scan", "strict_order", "use one of off, relaxed_order"),
    ],
)
def test_pgvector_settings_out_of_range(
    tmp_path: Path, name: str, value: object, expected: str
) -> None:
    # postgresql.conf values pgvector rejects are dropped with a warning at library load:
    # the run would record the spec's value while pgvector uses its default
    message = _error(tmp_path, _spec(server={"settings": {name: value}}))
    assert f"[server.settings] {name} = {value!r} is " in message
    assert expected in message
    # (parsed directly: the test TOML writer would nest a dotted key in an inline table)
    message = _parse_error(tmp_path, _spec(server={"sweep": [{name: value}]}))
    assert f"[server.sweep #1] {name} = {value!r} is " in message


def test_pgvector_settings_in_range_are_kept(tmp_path: Path) -> None:
    settings = {
        "hnsw.ef_search": 1000,
        "ivfflat.probes": "8",
        "hnsw.iterative_scan": "relaxed_order",
        "ivfflat.iterative_scan": "off",
        "hnsw.max_scan_tuples": 20000,
    }
    spec = _load(tmp_path, _spec(server={"settings": settings}))
    assert spec.server.settings["hnsw.ef_search"] == "1000"
    assert spec.server.settings["hnsw.iterative_scan"] == "relaxed_order"


@pytest.mark.parametrize(
    ("index", "params", "expected"),
    [
        ("hnsw(m=8,ef_construction=32)", {"hnsw.ef_search": 5000}, "must be an integer 1..1000"),
        ("ivfflat(lists=20)", {"ivfflat.probes": 40000}, "must be an integer 1..32768"),
        ("ivfflat(lists=20)", {"ivfflat.probes": 21}, "exceeds lists = 20 of ivfflat(lists=20)"),
    ],
)
def test_load_query_params_ranges(
    tmp_path: Path, index: str, params: dict[str, int], expected: str
) -> None:
    # hnsw.ef_search = 5000 ran with exit 0 and results claimed 5000 while pgvector used 40
    message = _error(tmp_path, _spec(load={"index": index, "query_params": params}))
    key = next(iter(params))
    assert f"[load] query_params.{key} = {params[key]}" in message
    assert expected in message
    spec = _load(tmp_path, _spec(load={"index": index, "query_params": {key: 20}}))
    assert spec.load is not None and spec.load.query_params[key] == 20
