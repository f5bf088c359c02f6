"""Export the append-only audit trail for auditors: CSV (with a header row) or a JSON array.

Rows are streamed page by page from the database, so a year of history never sits in memory.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from storage.reports import AuditRecord, Sessions, iter_audit_events

COLUMNS = ("id", "at", "change_id", "actor", "action", "details", "prev_hash", "hash")
ExportFormat = Literal["csv", "json"]


def _details(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False, default=str)


def _row(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record["id"],
        "at": record["at"].astimezone(UTC).isoformat(),
        "change_id": record["change_id"],
        "actor": record["actor"],
        "action": record["action"],
        "details": record["details"],
        "prev_hash": record["prev_hash"],
        "hash": record["hash"],
    }


async def export_audit(
    sessions: Sessions, *, since: datetime, until: datetime, fmt: ExportFormat, out: TextIO
) -> int:
    """Write every audit event with `at` in [since, until), ordered by (at, id); returns how
    many. Times are ISO 8601 UTC. CSV carries `details` as a JSON string and an empty
    `change_id` for events of no single change; JSON carries them as an object and null.
    Each row's prev_hash and hash let an auditor check the chains (`changebot audit verify`)."""
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown export format {fmt!r} (use csv or json)")
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        async for record in iter_audit_events(sessions, since=since, until=until):
            row = _row(record)
            writer.writerow(
                [
                    row["id"],
                    row["at"],
                    row["change_id"] or "",
                    row["actor"],
                    row["action"],
                    _details(row["details"]),
                    row["prev_hash"],
                    row["hash"],
                ]
            )
            count += 1
        return count
    out.write("[")
    async for record in iter_audit_events(sessions, since=since, until=until):
        out.write(",\n" if count else "\n")
        out.write(json.dumps(_row(record), ensure_ascii=False, sort_keys=True, default=str))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
