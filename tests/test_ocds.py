"""The OCDS reader and its evaluation sets, on vendored slices of real UK award notices
(tests/data/ocds, see PROVENANCE.md) and on small hand-made releases for what those lack (CPV
items, party scale, values, several releases of one award). Every file and hand-made release
that should be valid OCDS is checked against the vendored OCDS 1.1 schemas first."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from matcher.ocds import (
    Award,
    Supplier,
    build_ocds_eval_set,
    parse_ocds,
    read_ocds,
)
from matcher.outcomes import OutcomesFileError

DATA = Path(__file__).resolve().parent / "data" / "ocds"
PACKAGE = DATA / "uk-awards-slice.release-package.json"
RECORDS = DATA / "uk-awards-slice.record-package.json"
LINES = DATA / "uk-awards-slice.jsonl"
BAD_LINES = DATA / "uk-awards-bad.jsonl"
BAD_PACKAGE = DATA / "uk-awards-bad.release-package.json"
# The record package schema refers to the OCDS 1.2 record schema, which is not vendored; it
# stands in with the record schema's required fields, and each release inside a record is
# validated against the release schema on its own (see `schema_errors`).
RECORD_SCHEMA_URL = "https://standard.open-contracting.org/schema/1__2__0/record-schema.json"


def _schemas() -> tuple[dict[str, dict[str, Any]], Registry]:
    schemas = {
        name: json.loads((DATA / f"{name}-schema.json").read_text(encoding="utf-8"))
        for name in ("release", "release-package", "record-package")
    }
    registry: Registry = Registry().with_resources(
        [(s["id"], Resource(s, DRAFT4)) for s in schemas.values()]
    ).with_resource(
        RECORD_SCHEMA_URL,
        Resource({"type": "object", "required": ["ocid", "releases"]}, DRAFT4),
    )
    return schemas, registry


SCHEMAS, REGISTRY = _schemas()


def schema_errors(kind: str, document: Any) -> list[str]:
    """What the OCDS schema `kind` ("release", "release-package", "record-package") says is
    wrong with `document`; for a record package also each compiled or embedded release."""
    validator = Draft4Validator(
        SCHEMAS[kind], registry=REGISTRY, format_checker=Draft4Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    if kind == "record-package":
        for record in document.get("records", []):
            releases = [record["compiledRelease"]] if "compiledRelease" in record else []
            releases += [r for r in record.get("releases", []) if "ocid" in r]  # embedded
            for release in releases:
                errors += schema_errors("release", release)
    return errors


def release(
    ocid: str,
    when: str,
    suppliers: list[tuple[str, str]],
    *,
    title: str = "Data platform",
    description: str = "",
    buyer: str = "Cabinet Office",
    cpv: list[tuple[str, str]] | None = None,
    scale: dict[str, str] | None = None,
    value: float | None = None,
    award_id: str = "1",
    status: str = "active",
) -> dict[str, Any]:
    """One OCDS 1.1 release with one award; suppliers as (party id, name)."""
    scale = scale or {}
    parties: list[dict[str, Any]] = [{"id": "B-" + buyer, "name": buyer, "roles": ["buyer"]}]
    for party_id, name in suppliers:
        party: dict[str, Any] = {"id": party_id, "name": name, "roles": ["supplier"]}
        if party_id in scale:
            party["details"] = {"scale": scale[party_id]}
        parties.append(party)
    tender: dict[str, Any] = {"id": ocid + "-t", "title": title}
    if description:
        tender["description"] = description
    if cpv:
        tender["items"] = [
            {"id": str(i), "classification": {"scheme": "CPV", "id": code, "description": label}}
            for i, (code, label) in enumerate(cpv, start=1)
        ]
    award: dict[str, Any] = {
        "id": award_id, "date": f"{when}T00:00:00Z", "status": status,
        "suppliers": [{"id": p, "name": n} for p, n in suppliers],
    }
    if value is not None:
        award["value"] = {"amount": value, "currency": "GBP"}
    return {
        "ocid": ocid, "id": f"{ocid}-{when}", "date": f"{when}T00:00:00Z", "tag": ["award"],
        "initiationType": "tender", "parties": parties,
        "buyer": {"id": "B-" + buyer, "name": buyer}, "tender": tender, "awards": [award],
    }


def package(*releases: dict[str, Any]) -> dict[str, Any]:
    doc = {"uri": "urn:test", "version": "1.1", "publishedDate": "2020-07-01T00:00:00Z",
           "releases": list(releases)}
    assert schema_errors("release-package", doc) == []
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# -- the vendored slices ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "path"),
    [("release-package", PACKAGE), ("record-package", RECORDS),
     ("release-package", BAD_PACKAGE)],
)
def test_packages_are_valid_ocds(kind: str, path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    errors = schema_errors(kind, document)
    if path == BAD_PACKAGE:  # broken on purpose: exactly the releases PROVENANCE.md names
        assert sorted({e.split("]")[0] for e in errors}) == [
            "['releases', 1", "['releases', 3", "['releases', 4, 'awards', 0, 'date'"]
    else:
        assert errors == []


def test_json_lines_are_valid_releases_except_the_broken_ones() -> None:
    for path, broken in ((LINES, set()), (BAD_LINES, {2, 3, 7, 8})):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                document = json.loads(line)
            except ValueError:
                assert number in broken
                continue
            assert (schema_errors("release", document) != []) == (number in broken), number


def test_release_package_gives_every_award() -> None:
    document = json.loads(PACKAGE.read_text(encoding="utf-8"))
    awards, errors = read_ocds(PACKAGE)
    assert errors == []
    assert len(awards) == len(document["releases"]) == 53
    assert [a.date for a in awards] == sorted(a.date for a in awards)  # oldest first
    first = document["releases"][0]
    award = next(a for a in awards if a.ocid == first["ocid"])
    assert award.award_id == first["awards"][0]["id"]
    assert award.external_id == f"{first['ocid']}/{first['awards'][0]['id']}"
    assert award.title == first["tender"]["title"]
    assert award.description == " ".join(first["tender"]["description"].split())
    assert (award.buyer_id, award.buyer_name) == (first["buyer"]["id"], first["buyer"]["name"])
    assert [s.id for s in award.suppliers] == [s["id"] for s in first["awards"][0]["suppliers"]]
    assert award.date == date.fromisoformat(first["awards"][0]["date"][:10])
    # The slice has no CPV items, scales or values: the reader copes without them.
    assert all(a.cpv == [] and a.category == "" and a.value is None for a in awards)
    assert all(s.sme is None for a in awards for s in a.suppliers)


def test_record_package_reads_compiled_and_embedded_releases() -> None:
    document = json.loads(RECORDS.read_text(encoding="utf-8"))
    awards, errors = read_ocds(RECORDS)
    assert errors == []
    assert sorted(a.ocid for a in awards) == sorted(r["ocid"] for r in document["records"])
    assert {a.unit for a in awards} == {"record"}
    by_ocid = {a.ocid: a for a in awards}
    for record in document["records"]:
        source = record.get("compiledRelease") or record["releases"][0]
        assert by_ocid[record["ocid"]].title == source["tender"]["title"]


def test_json_lines_read_like_the_package() -> None:
    awards, errors = read_ocds(LINES)
    assert errors == []
    assert len(awards) == 10
    assert sorted(a.position for a in awards) == list(range(1, 11))  # the line numbers
    package_awards, _ = read_ocds(PACKAGE)
    same = {a.external_id: a for a in package_awards}
    for award in awards:
        twin = same[award.external_id]
        assert (award.title, award.date, award.suppliers) == (twin.title, twin.date,
                                                              twin.suppliers)


def test_bad_releases_are_reported_and_skipped() -> None:
    awards, errors = read_ocds(BAD_LINES)
    assert sorted(a.position for a in awards) == [1, 4, 9]
    assert [(e.unit, e.position) for e in errors] == [
        ("line", 2), ("line", 3), ("line", 6), ("line", 7), ("line", 8)]
    messages = [str(e) for e in errors]
    assert messages[0].startswith("line 2: not JSON")
    assert messages[1] == "line 3: missing ocid"
    assert "a supplier without a party id (MCADAM Design Ltd)" in messages[2]
    assert messages[3] == "line 7: not a JSON object"
    assert "bad date 'the 3rd of May'" in messages[4]

    awards, errors = read_ocds(BAD_PACKAGE)
    assert sorted(a.position for a in awards) == [1, 3, 6]
    assert [str(e).split(":")[0] for e in errors] == ["release 2", "release 4", "release 5"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"  \n", "empty file"),
        (b"{\n  \"releases\": [,\n}", "not JSON"),
        (b"id,title\n1,x\n", "not JSON"),
        (b'{"rows": []}', "not OCDS"),
        (b'"a string"', "not OCDS"),
    ],
)
def test_files_that_are_not_ocds_raise(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "file.json"
    path.write_bytes(content)
    with pytest.raises(OutcomesFileError, match=message):
        read_ocds(path)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(OutcomesFileError, match="cannot read"):
        read_ocds(tmp_path / "none.json")


# -- what the slices lack, by hand ---------------------------------------------------------------


def test_cpv_scale_and_value() -> None:
    doc = package(release(
        "ocds-1", "2020-02-03", [("GB-COH-1", "Acme Ltd"), ("GB-COH-2", "Bravo plc"),
                                 ("GB-COH-3", "Charlie LLP")],
        cpv=[("72000000-5", "IT services"), ("48000000-8", "Software"),
             ("72000000", "IT services again")],
        scale={"GB-COH-1": "sme", "GB-COH-2": "large", "GB-COH-3": "micro"}, value=125000.5,
    ))
    doc["releases"][0]["tender"]["items"].append(
        {"id": "x", "classification": {"scheme": "UNSPSC", "id": "43230000"}})
    assert schema_errors("release-package", doc) == []
    [award], errors = parse_ocds(encode(doc))
    assert errors == []
    # Check digits dropped, duplicates once, other schemes ignored; the first code is the main.
    assert award.cpv == [("72000000", "IT services"), ("48000000", "Software")]
    assert award.category == "72000000"
    assert (award.value, award.currency) == (125000.5, "GBP")
    assert [(s.id, s.sme) for s in award.suppliers] == [
        ("GB-COH-1", True), ("GB-COH-2", False), ("GB-COH-3", True)]


def test_award_items_and_numeric_ids() -> None:
    rel = release("ocds-2", "2020-02-03", [("GB-COH-1", "Acme Ltd")],
                  cpv=[("45000000-7", "Construction")])
    rel["awards"][0]["items"] = [
        {"id": "1", "classification": {"scheme": "cpv", "id": "71000000-8"}}]
    rel["awards"][0]["id"] = 7
    rel["awards"][0]["suppliers"][0]["id"] = 42
    rel["parties"][1]["id"] = "42"  # the party id is a string; a reference may be a number
    [award], errors = parse_ocds(encode(package(rel)))
    assert errors == []
    assert award.cpv == [("71000000", "")]  # the award's own lot, not the whole tender
    assert award.award_id == "7" and award.suppliers == [Supplier("42", "Acme Ltd")]


def test_only_won_awards_and_the_latest_release_of_each() -> None:
    first = release("ocds-3", "2020-01-10", [("GB-COH-1", "Acme Ltd")], title="Old title")
    update = release("ocds-3", "2020-01-20", [("GB-COH-1", "Acme Ltd")], title="New title")
    update["awards"][0]["date"] = "2020-01-10T00:00:00Z"
    pending = release("ocds-4", "2020-01-11", [("GB-COH-1", "Acme Ltd")], status="pending")
    cancelled = release("ocds-5", "2020-01-12", [("GB-COH-1", "Acme Ltd")], status="cancelled")
    no_award_date = release("ocds-6", "2020-01-13", [("GB-COH-2", "Bravo plc")])
    del no_award_date["awards"][0]["date"]
    # Later release first in the file: the release date decides, not the order.
    awards, errors = parse_ocds(encode(package(update, first, pending, cancelled,
                                               no_award_date)))
    assert errors == []
    assert [(a.ocid, a.title, a.date) for a in awards] == [
        ("ocds-3", "New title", date(2020, 1, 10)),
        ("ocds-6", "Data platform", date(2020, 1, 13)),  # the release's date stands in
    ]


def test_single_release_and_package_per_line() -> None:
    one = release("ocds-7", "2020-03-01", [("GB-COH-1", "Acme Ltd")])
    [award], _ = parse_ocds(encode(one))
    assert award.ocid == "ocds-7"
    two = release("ocds-8", "2020-03-02", [("GB-COH-2", "Bravo plc")])
    lines = encode(package(one)) + b"\n" + encode(two) + b"\n"
    awards, errors = parse_ocds(lines)
    assert errors == [] and [(a.ocid, a.position) for a in awards] == [
        ("ocds-7", 1), ("ocds-8", 2)]


def test_packages_per_line_place_their_bad_releases(tmp_path: Path) -> None:
    good = release("ocds-11", "2020-03-01", [("GB-COH-1", "Acme Ltd")])
    bad = dict(good, ocid="")
    path = tmp_path / "packages.jsonl"
    path.write_bytes(encode(package(good)) + b"\n" + encode({"version": "1.1",
                                                             "releases": [good, bad]}) + b"\n")
    awards, errors = read_ocds(path)
    assert [a.ocid for a in awards] == ["ocds-11"]  # the same award twice is one
    assert [str(e) for e in errors] == ["line 2: release 2: missing ocid"]
    # One line holding a whole package is a package: its releases are placed as such.
    path.write_bytes(encode({"version": "1.1", "releases": [good, bad]}))
    assert [str(e) for e in read_ocds(path)[1]] == ["release 2: missing ocid"]


def test_json_lines_must_start_with_an_object(tmp_path: Path) -> None:
    path = tmp_path / "numbers.jsonl"
    path.write_bytes(b"1\n2\n")
    with pytest.raises(OutcomesFileError, match="not OCDS"):
        read_ocds(path)
    with pytest.raises(OutcomesFileError, match="not OCDS"):
        parse_ocds(b"1\n2\n")


def test_linked_release_without_data_is_reported() -> None:
    doc = {"version": "1.1", "records": [
        {"ocid": "ocds-9", "releases": [
            {"url": "https://example.org/r.json", "date": "2020-01-01T00:00:00Z",
             "tag": ["award"]}]},
        {"ocid": "ocds-10", "compiledRelease": release("ocds-10", "2020-01-02",
                                                        [("GB-COH-1", "Acme Ltd")]),
         "releases": [{"url": "https://example.org/10.json", "date": "2020-01-02T00:00:00Z",
                       "tag": ["award"]}]},
    ]}
    assert schema_errors("record-package", doc) == []
    awards, errors = parse_ocds(encode(doc))
    assert [a.ocid for a in awards] == ["ocds-10"]
    assert [str(e) for e in errors] == [
        "record 1: a linked release (a url only): its data is not in this file"]


# -- evaluation sets ------------------------------------------------------------------------------


def _awards(*releases: dict[str, Any]) -> list[Award]:
    awards, errors = parse_ocds(encode(package(*releases)))
    assert errors == []
    return awards


SPLIT = date(2020, 5, 1)
A, B, C, D = ("P-A", "Acme Ltd"), ("P-B", "Bravo plc"), ("P-C", "Charlie LLP"), ("P-D", "Delta")


def test_eval_set_rules() -> None:
    awards = _awards(
        release("o1", "2020-01-10", [A], title="Cloud hosting", description="Hosting in AWS",
                buyer="Home Office", scale={"P-A": "sme"}),
        release("o2", "2020-02-10", [B, C], title="Road repairs", buyer="Leeds City Council"),
        release("o3", "2020-04-30", [A], title="Kubernetes support", scale={"P-A": "large"}),
        # On or after the split:
        release("o4", "2020-05-01", [A], title="Cloud migration", description="Move to AWS",
                buyer="DVLA"),  # a query: one supplier with earlier work
        release("o5", "2020-05-02", [B], title="Potholes"),  # a query: B shared an award
        release("o6", "2020-05-03", [A, B], title="Both"),  # two suppliers: no single winner
        release("o7", "2020-05-04", [D], title="New company"),  # no earlier award
        release("o8", "2020-06-01", [C], title="Late"),  # a query, unless `until` ends first
    )
    evalset = build_ocds_eval_set(awards, SPLIT)
    sellers = {s.name: s for s in evalset.sellers}
    # Candidates: every supplier with an award before the split, shared awards included.
    assert list(sellers) == ["Acme Ltd", "Bravo plc", "Charlie LLP"]
    acme = sellers["Acme Ltd"]
    assert [c.title for c in acme.case_studies] == ["Cloud hosting", "Kubernetes support"]
    first = acme.case_studies[0]
    assert (first.summary, first.organisation, first.won_at, first.category) == (
        "Hosting in AWS", "Home Office", date(2020, 1, 10), "")
    assert acme.sme is False  # the latest scale counts
    assert acme.categories == [] and acme.locations == []  # no CPV, no locations: still works
    assert [c.title for c in sellers["Charlie LLP"].case_studies] == ["Road repairs"]
    titles = [(q.brief.title, q.relevant) for q in evalset.queries]
    assert titles == [("Cloud migration", acme.id), ("Potholes", sellers["Bravo plc"].id),
                      ("Late", sellers["Charlie LLP"].id)]
    brief = evalset.queries[0].brief
    assert (brief.summary, brief.organisation, brief.category) == ("Move to AWS", "DVLA", "")
    assert brief.published_at is not None and brief.published_at.date() == SPLIT
    # Brief ids never collide with the ids of past work.
    past = {c.brief_id for s in evalset.sellers for c in s.case_studies}
    assert not past & {q.brief.id for q in evalset.queries}

    until = build_ocds_eval_set(awards, SPLIT, until=date(2020, 6, 1))
    assert [q.brief.title for q in until.queries] == ["Cloud migration", "Potholes"]


def test_eval_set_with_cpv_categories() -> None:
    awards = _awards(
        release("o1", "2020-01-10", [A], cpv=[("72000000-5", "IT services")]),
        release("o2", "2020-05-10", [A], cpv=[("48000000-8", "Software")]),
    )
    evalset = build_ocds_eval_set(awards, SPLIT)
    [acme] = evalset.sellers
    assert acme.categories == ["72000000"]
    assert acme.case_studies[0].category == "72000000"
    assert evalset.queries[0].brief.category == "48000000"


def test_eval_set_on_the_slice() -> None:
    awards, _ = read_ocds(PACKAGE)
    evalset = build_ocds_eval_set(awards, SPLIT)
    assert (len(evalset.queries), len(evalset.sellers)) == (12, 39)
    ids = {s.id for s in evalset.sellers}
    assert all(q.relevant in ids for q in evalset.queries)
