#!/usr/bin/env python3
"""Turn a Firebase-format firestore.indexes.json into gcloud work for infra/phases/data.sh.

gcloud cannot deploy that file (a firebase-tools feature), so this small helper does the
diff that `firebase deploy --only firestore:indexes` would do, without deleting anything:

  firestore_indexes.py composite INDEX_FILE EXISTING_JSON
      one line per composite index missing from EXISTING_JSON (the output of
      `gcloud firestore indexes composite list --format=json`), tab-separated:
      collectionGroup, query scope (gcloud spelling), then one --field-config value per field.
  firestore_indexes.py overrides INDEX_FILE
      one line per fieldOverrides entry: collectionGroup, fieldPath, ttl (1/0),
      exempt (1 when "indexes" is an empty list: single-field indexes disabled).
"""

from __future__ import annotations

import json
import sys


def _fail(msg: str) -> None:
    print(f"ERROR: {msg}", file=sys.stderr)
    sys.exit(1)


def _load(path: str) -> dict:
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        _fail(f"cannot read index file {path}: {exc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("indexes", []), list):
        _fail(f"{path}: expected an object with an 'indexes' list")
    return doc


def _field_config(field: dict) -> str:
    path = field.get("fieldPath")
    if not path:
        _fail(f"index field without fieldPath: {field}")
    if "order" in field:
        return f"field-path={path},order={field['order'].lower()}"
    if field.get("arrayConfig") == "CONTAINS":
        return f"field-path={path},array-config=contains"
    if "vectorConfig" in field:
        _fail(f"vector index fields are not supported by this script: {field}")
    _fail(f"index field needs order or arrayConfig: {field}")
    return ""  # unreachable


def _signature(group: str, scope: str, fields: list[dict]) -> tuple:
    cleaned = [
        (f.get("fieldPath"), f.get("order") or f.get("arrayConfig"))
        for f in fields
        if f.get("fieldPath") != "__name__"
    ]
    return (group, (scope or "COLLECTION").upper(), tuple(cleaned))


def composite(index_file: str, existing_file: str) -> None:
    doc = _load(index_file)
    with open(existing_file) as fh:
        text = fh.read().strip()
    existing = json.loads(text) if text else []
    have = set()
    for idx in existing:
        # name: projects/P/databases/D/collectionGroups/G/indexes/ID
        parts = idx.get("name", "").split("/")
        group = parts[parts.index("collectionGroups") + 1] if "collectionGroups" in parts else ""
        have.add(_signature(group, idx.get("queryScope", ""), idx.get("fields", [])))
    for idx in doc.get("indexes", []):
        group = idx.get("collectionGroup")
        if not group:
            _fail(f"index without collectionGroup: {idx}")
        scope = idx.get("queryScope", "COLLECTION")
        if _signature(group, scope, idx.get("fields", [])) in have:
            continue
        gscope = "collection-group" if scope.upper() == "COLLECTION_GROUP" else "collection"
        print("\t".join([group, gscope, *(_field_config(f) for f in idx.get("fields", []))]))


def overrides(index_file: str) -> None:
    doc = _load(index_file)
    for ov in doc.get("fieldOverrides", []):
        group, path = ov.get("collectionGroup"), ov.get("fieldPath")
        if not group or not path:
            _fail(f"fieldOverride needs collectionGroup and fieldPath: {ov}")
        if ov.get("indexes"):
            print(
                f"WARNING: custom single-field indexes on {group}.{path} are not applied by this script "
                "(only exemptions and TTL are)",
                file=sys.stderr,
            )
        ttl = "1" if ov.get("ttl") else "0"
        exempt = "1" if ov.get("indexes") == [] else "0"
        print("\t".join([group, path, ttl, exempt]))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "composite":
        composite(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "overrides":
        overrides(sys.argv[2])
    else:
        _fail("usage: firestore_indexes.py composite INDEX_FILE EXISTING_JSON | overrides INDEX_FILE")
