"""apply.sql and the postgresql.conf snippet as text (tests/integration/test_tune_apply_psql.py
runs apply.sql with psql on a real server)."""

from __future__ import annotations

import re

from pgvbench.studies.build.sizes import parse_size
from pgvbench.studies.tune.apply import PLACEHOLDER, apply_sql, postgresql_conf
from tune_support import MB, config, evaluation, ratio, record, trial, two_way


def _statements(script: str) -> list[str]:
    return [line for line in script.splitlines() if line and not line.startswith(("--", "#"))]


def test_apply_sql_creates_the_index_concurrently_with_its_options_and_sets_the_knob() -> None:
    script = apply_sql(two_way(ratio(0.8, 0.75, 0.86)), schema_table="public.items")
    create = next(s for s in _statements(script) if s.startswith("CREATE INDEX"))
    assert create == (
        "CREATE INDEX CONCURRENTLY items_embedding_hnsw_m16_efc64 ON public.items USING hnsw "
        "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);"
    )
    assert 'ALTER DATABASE :"DBNAME" SET hnsw.ef_search = 40;' in _statements(script)
    assert "--      BEGIN; SET LOCAL hnsw.ef_search = 40; <the query>; COMMIT;" in script
    assert "--      ALTER ROLE your_app_role SET hnsw.ef_search = 40;" in script
    # every statement has its evidence above it
    assert "recall@10 0.962 mean, 0.955 lower bound (95%)" in script
    assert "over 500 queries; 1,200 QPS, p99 4.20 ms at 8 clients" in script
    assert "built in 12.3 s over 10,000 rows" in script
    assert "index 45.0" in script and "table heap 150 MB" in script
    assert PLACEHOLDER not in script
    assert all(len(line) <= 100 for line in script.splitlines() if line.startswith("--"))


def test_halfvec_variants_index_the_right_expression_with_the_right_opclass() -> None:
    index = record([trial(0, evaluation(config(storage="halfvec_index")))], winner=0, dim=768)
    script = apply_sql(index, schema_table="items")
    assert "((embedding::halfvec(768)) halfvec_cosine_ops)" in script
    assert "ORDER BY embedding::halfvec(768) <=> $1::halfvec(768) LIMIT 10" in script
    assert "ALTER TABLE" not in script
    column = record([trial(0, evaluation(config(storage="halfvec_column")))], winner=0, dim=768)
    script = apply_sql(column, schema_table="items")
    alter = (
        "ALTER TABLE items ALTER COLUMN embedding TYPE halfvec(768) USING embedding::halfvec(768);"
    )
    assert f"-- {alter}" in script  # commented out: it rewrites the table
    assert "REWRITES THE WHOLE TABLE" in script
    assert "USING hnsw (embedding halfvec_cosine_ops)" in script
    assert alter in _statements(apply_sql(column, schema_table="items", alter_column=True))
    # a column that is halfvec already needs no rewrite, and any winner indexes it as is
    plain = record([trial(0, evaluation())], winner=0, dim=768)
    script = apply_sql(plain, schema_table="items", column_type="halfvec")
    assert "USING hnsw (embedding halfvec_cosine_ops)" in script
    assert "ALTER TABLE" not in script


def test_names_that_need_quotes_are_quoted_and_steps_are_numbered() -> None:
    rec = record([trial(0, evaluation(config("ivfflat", lists=200)))], winner=0, metric="l2")
    script = apply_sql(rec, schema_table="My Schema.Items", column="Emb")
    assert (
        'ON "My Schema"."Items" USING ivfflat ("Emb" vector_l2_ops) WITH (lists = 200);' in script
    )
    assert 'ALTER DATABASE :"DBNAME" SET ivfflat.probes = 40;' in script
    steps = re.findall(r"^-- (\d)\. ", script, flags=re.MULTILINE)
    assert steps == ["1", "2", "3", "4"]


def test_a_missing_table_is_a_marked_placeholder_and_filtered_targets_set_the_scan_mode() -> None:
    summary = {"predicate": "label", "attribute": "category", "condition": "category = $2::int",
               "selectivity": 0.021}  # fmt: skip
    rec = record([trial(0, evaluation(iterative_scan="relaxed_order"))], winner=0,
                 filter="label", filter_summary=summary)  # fmt: skip
    script = apply_sql(rec)
    assert f"EDIT FIRST: {PLACEHOLDER} is a placeholder" in script
    assert f"ON {PLACEHOLDER} USING hnsw" in script
    assert 'ALTER DATABASE :"DBNAME" SET hnsw.iterative_scan = relaxed_order;' in script
    assert "SET LOCAL hnsw.ef_search = 40; SET LOCAL hnsw.iterative_scan =" in script
    assert f"SELECT id FROM {PLACEHOLDER} WHERE category = $2::int ORDER BY" in script
    assert "$2 the filter's value" in script
    # records written before the field: a single searched mode is the one
    old = record([trial(0, evaluation())], winner=0, filter="label",
                 iterative_scan=("strict_order",))  # fmt: skip
    assert "SET hnsw.iterative_scan = strict_order;" in apply_sql(old)
    plain = apply_sql(record([trial(0, evaluation(iterative_scan="off"))], winner=0))
    assert "iterative_scan" not in plain


def test_the_winning_build_settings_are_set_for_the_build_only() -> None:
    cfg = config(
        settings={"maintenance_work_mem": "512MB", "max_parallel_maintenance_workers": "3"}
    )
    script = apply_sql(record([trial(0, evaluation(cfg))], winner=0), schema_table="items")
    statements = _statements(script)
    create = next(i for i, s in enumerate(statements) if s.startswith("CREATE INDEX"))
    assert statements[create - 2 : create] == [
        "SET maintenance_work_mem = '512MB';",
        "SET max_parallel_maintenance_workers = 3;",
    ]
    assert statements[create + 1 : create + 3] == [
        "RESET maintenance_work_mem;",
        "RESET max_parallel_maintenance_workers;",
    ]


def test_postgresql_conf_sizes_shared_buffers_to_hold_index_and_heap() -> None:
    rec = two_way(ratio(0.8, 0.75, 0.86), win=evaluation(index_mb=700, table_mb=900))
    conf = postgresql_conf(rec)
    settings = dict(
        line.split(" = ", 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    assert parse_size(settings["shared_buffers"]) >= 1600 * MB
    assert settings["shared_buffers"] == "2048MB"  # 1,600 MB x 1.25, a multiple of 512 MB
    assert parse_size(settings["maintenance_work_mem"]) >= 700 * MB  # the graph fits
    assert settings["max_parallel_maintenance_workers"] == "2"  # what the build ran with
    assert "# hnsw.ef_search = 40" in conf
    assert "The session ran with 128MB." in conf
    assert "RECOMMENDATIONS ONLY" not in conf
    assert "WARNING" in postgresql_conf(rec, ram_bytes=4 * 1024 * MB)
    assert "WARNING" not in postgresql_conf(rec, ram_bytes=64 * 1024 * MB)


def test_external_server_settings_are_recommendations_only() -> None:
    conf = postgresql_conf(two_way(ratio(0.8, 0.75, 0.86), external=True), ram_bytes=MB)
    assert "These are RECOMMENDATIONS ONLY" in conf
    assert "neither applied these nor tested" in conf
    assert "WARNING" not in conf  # the host's RAM is not the server's


def test_no_winner_writes_why_instead_of_statements() -> None:
    bad = evaluation(knob=None, reason="recall_unreachable", timed=False)
    rec = record([trial(0, bad)], winner=None, best_unmet=bad, recall=0.999)
    script = apply_sql(rec, schema_table="items")
    assert _statements(script) == []
    assert "no configuration in the space reaches recall 0.999" in script
    assert [line for line in postgresql_conf(rec).splitlines() if not line.startswith("#")] == []
