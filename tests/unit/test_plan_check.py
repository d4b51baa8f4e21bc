"""EXPLAIN checks that decide whether a sweep point measured the intended index."""

from __future__ import annotations

from typing import Any

from pgvbench.workloads.vector import check_plan, index_names_in_plan

INDEX_SCAN: dict[str, Any] = {
    "Node Type": "Limit",
    "Plans": [{"Node Type": "Index Scan", "Index Name": "items_hnsw_m16_efc64"}],
}
SEQ_SCAN: dict[str, Any] = {
    "Node Type": "Limit",
    "Plans": [{"Node Type": "Sort", "Plans": [{"Node Type": "Seq Scan"}]}],
}


def test_index_names_found_at_any_depth() -> None:
    nested = {"Node Type": "Gather", "Plans": [INDEX_SCAN]}
    assert index_names_in_plan(nested) == ["items_hnsw_m16_efc64"]
    assert index_names_in_plan(SEQ_SCAN) == []


def test_intended_index_used_is_fine() -> None:
    assert check_plan(INDEX_SCAN, "items_hnsw_m16_efc64") is None


def test_sequential_scan_instead_of_index_is_reported() -> None:
    problem = check_plan(SEQ_SCAN, "items_ivfflat_lis20")
    assert problem is not None
    assert "sequential scan" in problem and "items_ivfflat_lis20" in problem


def test_other_index_is_reported() -> None:
    problem = check_plan(INDEX_SCAN, "items_ivfflat_lis20")
    assert problem is not None and "items_hnsw_m16_efc64" in problem


def test_exact_scan_must_not_use_an_index() -> None:
    assert check_plan(SEQ_SCAN, None) is None
    problem = check_plan(INDEX_SCAN, None)
    assert problem is not None and "exact scan" in problem
