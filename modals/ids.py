"""Every action and callback id in one place, so listeners and builders cannot drift."""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    APPROVE = "change_approve"
    REJECT = "change_reject"
    START = "change_start"
    COMPLETE = "change_complete"
    FAIL = "change_fail"
    ROLLBACK = "change_rollback"
    CLOSE = "change_close"
    POST_APPROVE = "change_post_approve"
    POST_REJECT = "change_post_reject"
    ACKNOWLEDGE = "change_acknowledge"  # the on-call's "seen" on an emergency needing no go-ahead
    REVIEW = "change_review"


class CallbackId(StrEnum):
    NEW_CHANGE = "change_new"
    REJECT_REASON = "change_reject_reason"
    PROGRESS_NOTES = "change_progress_notes"
    RESCHEDULE = "change_reschedule"
    EMERGENCY = "change_emergency"
    REVIEW = "change_review_submit"
    DECLARE_EMERGENCY_SHORTCUT = "declare_emergency"
    NEW_CHANGE_SHORTCUT = "new_change"


class Field(StrEnum):
    """Input block ids of the CR form; each input's action_id is the same string."""

    TITLE = "title"
    CATEGORY = "category"
    CATALOG = "catalog"
    IMPACT = "impact"
    LIKELIHOOD = "likelihood"
    SERVICES = "services"
    STARTS_AT = "starts_at"
    ENDS_AT = "ends_at"
    DESCRIPTION = "description"
    JUSTIFICATION = "justification"
    IMPLEMENTATION_PLAN = "implementation_plan"
    ROLLBACK_PLAN = "rollback_plan"
    TEST_PLAN = "test_plan"
    DOWNTIME = "downtime"
    REASON = "reason"
    NOTES = "notes"
    EXCEPTION = "exception"
    EXCEPTION_REASON = "exception_reason"
    IMPLEMENTER = "implementer"
    LINKS = "links"
    SUCCESS_CRITERIA = "success_criteria"
    DEPENDENCIES = "dependencies"
    STAKEHOLDERS = "stakeholders"  # people; the channels have a block of their own
    STAKEHOLDER_CHANNELS = "stakeholder_channels"
    ROLLBACK_DURATION = "rollback_duration"
    ROLLBACK_TRIGGERS = "rollback_triggers"
