"""The certificate index: crt.sh's query semantics over real certificates, on SQLite and on a real
PostgreSQL started for the tests, with identical results on both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctwatch.errors import DecodeError
from ctwatch.store import QueryError, open_index
from ctwatch.store.index import SqlIndex, SqliteIndex, parse_query

from .index_records import (
    CTDATA,
    HOSTILE,
    TEST_LOG,
    fresh_record,
    log_records,
    postgres_cluster,
    real_records,
    record,
    x509_entry,
)


def _pem_der(path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    recs = real_records()
    idn = _pem_der(CTDATA / "certs" / "cryptography_vectors" / "x509" / "utf8-dnsname.pem")
    recs.append(record(*x509_entry(idn, [], 1500000000000), TEST_LOG, 50))
    recs += log_records(tmp_path_factory.mktemp("testlog") / "log", 40, [[HOSTILE, "www.example.com"]])
    recs.append(fresh_record(["fresh.example.net", "api.fresh.example.net"], 60))
    return recs


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="module")
def sqlite_index(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]]
) -> Iterator[SqlIndex]:
    ix = open_index(tmp_path_factory.mktemp("index"))
    ix.add(records)
    yield ix
    ix.close()


@pytest.fixture(scope="module")
def pg_index(pg_url: str, records: list[dict[str, Any]]) -> Iterator[SqlIndex]:
    ix = open_index(None, pg_url)
    ix.add(records)
    yield ix
    ix.close()


@pytest.fixture(params=["sqlite", "pg"])
def index(request: pytest.FixtureRequest) -> SqlIndex:
    return request.getfixturevalue(f"{request.param}_index")


def _ids(results: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in results]


def _expected(records: list[dict[str, Any]], pred: Any) -> set[str]:
    return {r["tbs_sha256"] for r in records if pred(r)}


def test_exact_identity_matches_whole_names_only(index: SqlIndex, records: list[dict[str, Any]]) -> None:
    got = index.search("google.com")
    assert {r["tbs_sha256"] for r in got} == _expected(records, lambda r: "google.com" in r["names"])
    assert got and all("google.com" in r["names"] for r in got)
    assert index.search("oogle.com") == []
    assert index.search("GOOGLE.com.") == got  # case and a trailing dot do not matter


def test_subdomain_pattern(index: SqlIndex, records: list[dict[str, Any]]) -> None:
    got = index.search("%.google.com")
    want = _expected(records, lambda r: any(n.endswith(".google.com") for n in r["names"]))
    assert {r["tbs_sha256"] for r in got} == want and len(got) == len(want) >= 2
    assert _ids(got) == sorted(_ids(got), reverse=True)  # newest first


def test_substring_pattern(index: SqlIndex, records: list[dict[str, Any]]) -> None:
    got = index.search("%oogleapi%")
    want = _expected(records, lambda r: any("oogleapi" in n for n in r["names"]))
    assert {r["tbs_sha256"] for r in got} == want and want
    mixed = index.search("%.google%.com")
    assert {r["tbs_sha256"] for r in mixed} == _expected(
        records,
        lambda r: any(
            n.find(".google") >= 0 and n.endswith(".com") and n.find(".google") + 7 <= len(n) - 4
            for n in r["names"]
        ),
    )


def test_underscore_and_quote_are_literal(index: SqlIndex) -> None:
    assert index.search("%o_gle%") == []  # "_" is not a wildcard: crt.sh patterns only use "%"
    assert index.search('%"oog%') == []


def test_hostile_names_are_found_verbatim(index: SqlIndex) -> None:
    got = index.search(HOSTILE)
    assert len(got) == 1 and HOSTILE in got[0]["names"]
    assert index.search("%onerror=alert(1)%") == got


def test_unicode_query_is_converted_to_punycode(index: SqlIndex) -> None:
    got = index.search("biztosítás.hu")
    assert len(got) == 1 and "xn--biztosts-fza2j.hu" in got[0]["names"]
    assert "biztosítás.hu" in got[0]["names_unicode"]
    assert index.search("xn--biztosts-fza2j.hu") == got


def test_certificate_and_precertificate_are_one_result(
    index: SqlIndex, records: list[dict[str, Any]]
) -> None:
    tbs = records[0]["tbs_sha256"]  # Argon2025h2's precert entry; records[1] is its final certificate
    assert records[1]["tbs_sha256"] == tbs and records[1]["entry_type"] == "x509"
    got = index.search(f"sha256:{tbs}")
    assert len(got) == 1 and got[0]["entry_types"] == ["precert", "x509"]
    assert got[0]["cert_sha256"] == records[1]["cert_sha256"]
    assert got[0]["precert_sha256"] == records[0]["cert_sha256"]
    apart = index.search(f"sha256:{tbs}", dedupe=False)
    assert [r["entry_types"] for r in apart] == [["precert"], ["x509"]]
    detail = index.get(got[0]["id"])
    assert detail is not None
    assert [(s["log_url"], s["index"], s["entry_type"]) for s in detail["sightings"]] == [
        (records[0]["log_url"], 912557348, "precert"),
        (records[1]["log_url"], 5, "x509"),
    ]
    assert detail["cert_der"] == records[1]["der"] and detail["precert_der"] == records[0]["der"]
    assert detail["sightings"][0]["chain"] == records[0]["chain"]
    # the earliest log timestamp is the entry timestamp, as on crt.sh
    assert detail["entry_timestamp"] == min(records[0]["timestamp"], records[1]["timestamp"])


def test_lookup_by_any_sha256_serial_id_and_issuer(index: SqlIndex, records: list[dict[str, Any]]) -> None:
    icarus = records[2]
    by_tbs = index.search(icarus["tbs_sha256"])
    assert [r["names"] for r in by_tbs] == [icarus["names"]]
    assert index.search(f"sha256:{icarus['cert_sha256'].upper()}") == by_tbs
    assert (
        index.search(
            f"serial:{':'.join(icarus['serial'][i : i + 2] for i in range(0, len(icarus['serial']), 2))}"
        )
        == by_tbs
    )
    assert index.search(str(by_tbs[0]["id"])) == by_tbs == index.search(f"id:{by_tbs[0]['id']}")
    wr2 = index.search("", issuer="wr2")
    assert {r["tbs_sha256"] for r in wr2} == _expected(records, lambda r: "CN=WR2" in r["issuer"])
    both = index.search("%.google.com", issuer="%google trust%")
    assert both and all("Google Trust" in r["issuer"] for r in both)


def test_exclude_expired(index: SqlIndex, records: list[dict[str, Any]]) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    got = index.search("%.example.net", exclude_expired=True)
    assert [r["names"][0] for r in got] == ["fresh.example.net"]
    assert all(r["not_after"] > now for r in index.search("%.com", exclude_expired=True))
    assert len(index.search("%.com")) > len(index.search("%.com", exclude_expired=True))


def test_paging_has_no_cap_and_no_overlap(index: SqlIndex, records: list[dict[str, Any]]) -> None:
    everything = index.search("%.test", limit=1000)
    pages, after = [], None
    while True:
        page = index.search("%.test", after=after, limit=7)
        if not page:
            break
        pages += page
        after = page[-1]["id"]
    assert pages == everything and len(everything) > 7
    assert len({r["id"] for r in pages}) == len(pages)


@pytest.mark.parametrize(
    "q", ["", "%", "%%", "a%", "%ab%", "%.b", "%a%b%c%", "x" * 2000, "sha256:1234", "serial:xyz", "id:-1"]
)
def test_malformed_or_unindexable_queries_are_refused(sqlite_index: SqlIndex, q: str) -> None:
    with pytest.raises(QueryError):
        sqlite_index.search(q)


def test_limits_are_checked(sqlite_index: SqlIndex) -> None:
    with pytest.raises(QueryError):
        sqlite_index.search("%.com", limit=0)
    with pytest.raises(QueryError):
        sqlite_index.search("%.com", limit=10**6)


def test_substring_uses_the_trigram_index_not_a_scan(sqlite_index: SqliteIndex) -> None:
    for q, needle in (("%oogle%", "dn_trgm"), ("%.google.com", "rev>? AND rev<?")):
        sql, args = sqlite_index._name_ids(parse_query(q).value)
        plan = " | ".join(r[3] for r in sqlite_index._conn().execute("EXPLAIN QUERY PLAN " + sql, args))
        assert needle in plan and "SCAN dn " not in plan and not plan.startswith("SCAN dn"), plan


def test_add_is_idempotent_and_since_is_a_gapless_cursor(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    ix = open_index(tmp_path)
    ix.add(records[:10])
    first = ix.since(0, 1000)
    assert [r["cursor"] for r in first] == sorted(r["cursor"] for r in first)
    assert [(r["log_url"], r["index"]) for r in first] == [(r["log_url"], r["index"]) for r in records[:10]]
    ix.add(records[:10])  # the same sightings again: nothing new
    assert ix.since(0, 1000) == first and ix.head() == first[-1]["cursor"]
    ix.add(records[10:20])
    more = ix.since(first[-1]["cursor"], 1000)
    assert [(r["log_url"], r["index"]) for r in more] == [(r["log_url"], r["index"]) for r in records[10:20]]
    assert [r["names"] for r in ix.since(first[4]["cursor"], 3)] == [r["names"] for r in records[5:8]]
    assert first[0]["der"] == records[0]["der"] and first[0]["chain"] == records[0]["chain"]
    ix.close()


def test_a_bad_record_writes_nothing(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    ix = open_index(tmp_path)
    for bad in (
        {"tbs_sha256": "zz"},
        {**records[3], "names": "x.com"},
        {**records[3], "der": "%%%"},
        {**records[3], "not_after": "yesterday"},
        {**records[3], "index": -1},
        "nope",
    ):
        with pytest.raises(DecodeError):
            ix.add([records[2], bad])  # type: ignore[list-item]
    assert ix.head() == 0 and ix.search("%.com") == []
    ix.close()


def test_sqlite_and_postgres_answer_identically(
    sqlite_index: SqlIndex, pg_index: SqlIndex, records: list[dict[str, Any]]
) -> None:
    queries = [
        "google.com",
        "%.google.com",
        "%oogle%",
        "%.test",
        "%.example.com",
        HOSTILE,
        records[2]["tbs_sha256"],
        f"serial:{records[3]['serial']}",
        "id:3",
        "%.google%.com",
        "biztosítás.hu",
    ]
    for q in queries:
        for kw in ({}, {"dedupe": False}, {"exclude_expired": True}, {"limit": 2, "after": 30}):
            assert sqlite_index.search(q, **kw) == pg_index.search(q, **kw), (q, kw)
    assert sqlite_index.search("", issuer="%let%") == pg_index.search("", issuer="%let%")

    def no_seen(d: dict[str, Any]) -> dict[str, Any]:
        return {**d, "sightings": [{k: v for k, v in s.items() if k != "seen"} for s in d["sightings"]]}

    for cert_id in range(1, 8):
        a, b = sqlite_index.get(cert_id), pg_index.get(cert_id)
        assert a is not None and b is not None and no_seen(a) == no_seen(b)
    strip = [{k: v for k, v in r.items() if k != "seen"} for r in sqlite_index.since(0, 500)]
    assert strip == [{k: v for k, v in r.items() if k != "seen"} for r in pg_index.since(0, 500)]
