"""How a status reads on cards, lists, the calendar, App Home and the CAB agenda: one place."""

from __future__ import annotations

from domain.enums import Status

STATUS_LABELS = {
    Status.PENDING_APPROVAL: ":hourglass_flowing_sand: Waiting for approval",
    Status.APPROVED: ":white_check_mark: Approved",
    Status.REJECTED: ":no_entry: Rejected",
    Status.CANCELLED: ":heavy_multiplication_x: Cancelled",
    Status.IN_PROGRESS: ":construction: In progress",
    Status.COMPLETED: ":tada: Completed",
    Status.FAILED: ":x: Failed",
    Status.ROLLED_BACK: ":leftwards_arrow_with_hook: Rolled back",
    Status.CLOSED: ":lock: Closed",
    Status.CHANGES_REQUESTED: ":memo: Changes requested",
}
