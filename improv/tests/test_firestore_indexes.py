"""improv/firestore/indexes.json against the queries the adapter really builds.

The emulator serves any query without an index, so this is where a missing composite index (a
FAILED_PRECONDITION in production) or a query on an index-exempted field is caught. No emulator
needed: the queries are built by the real SDK and read back as StructuredQuery protos.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.types import StructuredQuery

from improv.store import _firestore_queries as queries

INDEX_FILE = Path(__file__).resolve().parents[1] / "firestore" / "indexes.json"
Op = StructuredQuery.FieldFilter.Operator
EQUALITY = {Op.EQUAL, Op.IN}
RANGE = {
    Op.LESS_THAN,
    Op.LESS_THAN_OR_EQUAL,
    Op.GREATER_THAN,
    Op.GREATER_THAN_OR_EQUAL,
    Op.NOT_EQUAL,
    Op.NOT_IN,
}


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(INDEX_FILE.read_text())


@pytest.fixture(scope="module")
def client() -> firestore.Client:
    # Building queries never dials the server.
    return firestore.Client(project="demo-test", credentials=AnonymousCredentials())


def _filters(proto: StructuredQuery) -> list[StructuredQuery.FieldFilter]:
    where = proto.where
    if where.composite_filter.filters:
        return [f.field_filter for f in where.composite_filter.filters]
    return [where.field_filter] if where.field_filter.field.field_path else []


def required_index(proto: StructuredQuery) -> tuple[str, set[str], list[tuple[str, str]]]:
    """(collection, equality fields, then the ordered (field, direction) part), by Firestore's rules:
    an inequality field is ordered first, ascending, unless the query orders it itself."""
    collection = proto.from_[0].collection_id
    filters = _filters(proto)
    eq = {f.field.field_path for f in filters if f.op in EQUALITY}
    ranges = [f.field.field_path for f in filters if f.op in RANGE]
    assert len(filters) == len(eq) + len(ranges), f"unexpected operator in {proto}"
    orders = [
        (o.field.field_path, o.direction.name) for o in proto.order_by if o.field.field_path != "__name__"
    ]
    if ranges and ranges[0] not in [f for f, _ in orders]:
        orders.insert(0, (ranges[0], "ASCENDING"))
    return collection, eq, orders


def covered(spec: dict, collection: str, eq: set[str], orders: list[tuple[str, str]]) -> bool:
    exempt = {
        (o["collectionGroup"], o["fieldPath"]) for o in spec["fieldOverrides"] if o.get("indexes") == []
    }
    if not orders or (not eq and len(orders) == 1):
        # Served by single-field indexes (merged for several equalities), if not exempted.
        return not any((collection, f) in exempt for f in eq | {f for f, _ in orders})
    for index in spec["indexes"]:
        fields = [(f["fieldPath"], f["order"]) for f in index["fields"] if f["fieldPath"] != "__name__"]
        if index["collectionGroup"] != collection or index.get("queryScope", "COLLECTION") != "COLLECTION":
            continue
        if {f for f, _ in fields[: len(eq)]} == eq and fields[len(eq) :] == orders:
            return True
    return False


@pytest.mark.parametrize(("name", "build", "args"), queries.ALL, ids=[q[0] for q in queries.ALL])
def test_every_adapter_query_has_its_index(spec, client, name, build, args):
    collection, eq, orders = required_index(build(client, *args)._to_protobuf())
    assert covered(spec, collection, eq, orders), (
        f"{name} needs an index on {collection}: {sorted(eq)} + {orders}"
    )


def test_every_query_builder_is_checked():
    builders = {
        f for n, f in inspect.getmembers(queries, inspect.isfunction) if f.__module__ == queries.__name__
    }
    assert builders == {build for _, build, _ in queries.ALL}


def test_the_guides_audio_session_indexes_are_declared(spec):
    declared = {(i["collectionGroup"], tuple(f["fieldPath"] for f in i["fields"])) for i in spec["indexes"]}
    assert ("audio_sessions", ("user_id", "created_at")) in declared
    assert ("audio_sessions", ("session_id", "status")) in declared


def test_ttl_on_expires_at_for_every_collection_a_scene_owns(spec):
    ttl = {(o["collectionGroup"], o["fieldPath"]) for o in spec["fieldOverrides"] if o.get("ttl")}
    assert ttl == {("sessions", "expires_at"), ("turns", "expires_at"), ("audio_sessions", "expires_at")}
    # Best practice: the TTL timestamp is not indexed (a rising value caps writes at 500/s).
    for override in spec["fieldOverrides"]:
        if override.get("ttl"):
            assert override["indexes"] == []


def test_the_checker_itself_catches_a_missing_index(spec, client):
    # A query ordering audio sessions by bytes_in is not declared and bytes_in is exempted.
    query = (
        client.collection("audio_sessions").where(filter=FieldFilter("user_id", "==", 1)).order_by("bytes_in")
    )
    assert not covered(spec, *required_index(query._to_protobuf()))
    assert not covered(
        spec, *required_index(client.collection("sessions").order_by("created_at")._to_protobuf())
    )


def test_index_file_is_well_formed_firebase_format(spec):
    assert set(spec) == {"indexes", "fieldOverrides"}
    for index in spec["indexes"]:
        assert set(index) == {"collectionGroup", "queryScope", "fields"}
        assert all(
            set(f) == {"fieldPath", "order"} and f["order"] in ("ASCENDING", "DESCENDING")
            for f in index["fields"]
        )
    pairs = [(o["collectionGroup"], o["fieldPath"]) for o in spec["fieldOverrides"]]
    assert len(pairs) == len(set(pairs)), "one override per field"
