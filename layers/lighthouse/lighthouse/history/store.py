"""Where history's read models live (the read-models table), written in each file append's transaction.

- `file-tree#<project>` / `<path>`: each file's latest state (the project's file tree); its revision
  is the stream's version, and each write is conditional on the revision it was loaded at.
- `file-at#<project>#<path key>#<bucket>` / `<instant>#<version>`: one row per version, in buckets of
  logic.INDEX_BUCKET versions; the tree entry keeps each bucket's first instant, so "the file at T" is
  a GetItem and one Query in one small partition (newest row at or before T), never a fold.
- `shadow#<project>#<path key>` / `<instant>#<request>#<expert>`: expert suggestions (see shadow.py).
"""

from __future__ import annotations

import json
from typing import Any

from lighthouse.errors import MalformedRequest
from lighthouse.events.recorders import Action
from lighthouse.history.logic import bucket_at, bucket_of, path_key
from lighthouse.history.models import FileState, FileVersion

MAX_KEY = "9999999999"


def tree_model(project: str) -> str:
    return f"file-tree#{project}"


def versions_model(project: str, path: str, bucket: int) -> str:
    return f"file-at#{project}#{path_key(path)}#{bucket}"


def shadow_model(project: str, path: str) -> str:
    return f"shadow#{project}#{path_key(path)}"


def version_key(at: float, version: int) -> str:
    return f"{at:017.6f}#{version:010d}"


class HistoryIndex:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    # ---- the file tree ----------------------------------------------------------------------------

    def current(self, project: str, path: str) -> FileState:
        item = self._client.get_item(
            TableName=self._table, Key={"model": {"S": tree_model(project)}, "key": {"S": path}}, ConsistentRead=True
        ).get("Item")
        return FileState.model_validate_json(item["doc"]["S"]) if item else FileState(project=project, path=path)

    def tree(self, project: str, prefix: str = "") -> list[FileState]:
        condition = "#m = :m" + (" AND begins_with(#k, :p)" if prefix else "")
        values: dict[str, Any] = {":m": {"S": tree_model(project)}}
        if prefix:
            values[":p"] = {"S": prefix}
        return [
            FileState.model_validate_json(item["doc"]["S"])
            for item in self._query(condition, values, {"#m": "model", "#k": "key"} if prefix else {"#m": "model"})
        ]

    def writes(self, project: str, before: FileState, after: FileState, row: FileVersion) -> list[Action]:
        condition = "attribute_not_exists(revision)" if before.version == 0 else "revision = :loaded"
        tree_put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "model": {"S": tree_model(project)},
                "key": {"S": after.path},
                "revision": {"N": str(after.version)},
                "doc": {"S": after.model_dump_json()},
            },
            "ConditionExpression": condition,
        }
        if before.version:
            tree_put["ExpressionAttributeValues"] = {":loaded": {"N": str(before.version)}}
        row_put = {
            "TableName": self._table,
            "Item": {
                "model": {"S": versions_model(project, after.path, bucket_of(after.version))},
                "key": {"S": version_key(row.at, row.version)},
                "doc": {"S": row.model_dump_json()},
            },
        }
        return [{"Put": tree_put}, {"Put": row_put}]

    # ---- versions -------------------------------------------------------------------------------------

    def at(self, project: str, path: str, instant: float, state: FileState | None = None) -> FileVersion | None:
        """The newest version at or before `instant` (`state`: the file's tree entry, if read already)."""
        bucket = bucket_at((state or self.current(project, path)).bucket_starts, instant)
        if bucket is None:
            return None
        items = self._query(
            "#m = :m AND #k <= :k",
            {":m": {"S": versions_model(project, path, bucket)}, ":k": {"S": f"{instant:017.6f}#{MAX_KEY}"}},
            {"#m": "model", "#k": "key"},
            forward=False,
            limit=1,
        )
        return FileVersion.model_validate_json(items[0]["doc"]["S"]) if items else None

    def versions(self, project: str, path: str, limit: int, after: str | None) -> tuple[list[FileVersion], str | None]:
        """A page of versions, oldest first; `after` is the cursor a previous page returned."""
        buckets = len(self.current(project, path).bucket_starts)
        bucket, _, start = (after or "0|").partition("|")
        if not bucket.isdigit():
            raise MalformedRequest("next_token is not a cursor this API issued", code="INVALID_CURSOR")
        rows: list[FileVersion] = []
        for number in range(int(bucket), buckets):
            page, last = self._bucket_page(
                project, path, number, limit - len(rows), start if number == int(bucket) else ""
            )
            rows.extend(page)
            if last is not None:  # this bucket goes on: the page stopped at the limit (or at 1 MB)
                return rows, f"{number}|{last}"
            if len(rows) >= limit:
                return rows, f"{number + 1}|" if number + 1 < buckets else None
        return rows, None

    def _bucket_page(
        self, project: str, path: str, bucket: int, limit: int, start: str
    ) -> tuple[list[FileVersion], str | None]:
        model = versions_model(project, path, bucket)
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#m = :m",
            "ExpressionAttributeNames": {"#m": "model"},
            "ExpressionAttributeValues": {":m": {"S": model}},
            "Limit": limit,
        }
        if start:
            request["ExclusiveStartKey"] = {"model": {"S": model}, "key": {"S": start}}
        page = self._client.query(**request)
        last = page.get("LastEvaluatedKey")
        rows = [FileVersion.model_validate_json(item["doc"]["S"]) for item in page.get("Items", [])]
        return rows, (str(last["key"]["S"]) if last else None)

    def shadow(self, project: str, path: str, limit: int) -> list[dict[str, Any]]:
        items = self._query(
            "#m = :m", {":m": {"S": shadow_model(project, path)}}, {"#m": "model"}, forward=False, limit=limit
        )
        return [json.loads(item["doc"]["S"]) for item in items]

    def _query(
        self,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str],
        forward: bool = True,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": forward,
        }
        if limit:
            request["Limit"] = limit
        items: list[dict[str, Any]] = []
        while True:
            page = self._client.query(**request)
            items.extend(page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last or (limit and len(items) >= limit):
                return items[:limit] if limit else items
            request["ExclusiveStartKey"] = last
