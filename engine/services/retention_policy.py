"""The retention policy: days to keep each kind of data, automatic cleanup on/off and its time of day.
Settings (engine/services/setting_specs.py registry; the Settings page lists them too): this is the one
place their defaults live. The API and the service name them by field (`invocations_days` ...)."""

from __future__ import annotations

from engine.services.setting_specs import SettingSpec, register, register_group

# --- the policy: settings (engine/services/setting_specs.py), the one place its defaults live ---------

register_group("retention", "Retention")


def _days(key: str, default: int, label: str, description: str) -> SettingSpec:
    return SettingSpec(
        key, "int", default, "retention", label, description, minimum=1, maximum=3650, unit="days"
    )


register(
    _days("retention.invocations_days", 30, "Keep invocations", "Invocation records, attempts and logs."),
    _days("retention.logs_days", 14, "Keep logs", "Captured invocation logs and webhook call history."),
    _days("retention.dlq_days", 7, "Keep DLQ messages", "Resolved or discarded DLQ messages."),
    _days(
        "retention.workflow_executions_days",
        30,
        "Keep workflow executions",
        "Finished workflow executions and their state runs.",
    ),
    SettingSpec(
        "retention.auto_cleanup",
        "bool",
        False,
        "retention",
        "Automatic cleanup",
        "Delete expired data every day at the cleanup time.",
    ),
    SettingSpec(
        "retention.cleanup_time",
        "string",
        "03:00",
        "retention",
        "Cleanup time",
        "When the automatic cleanup runs, as HH:MM in the server's time zone.",
        max_length=5,
        pattern=r"([01]\d|2[0-3]):[0-5]\d",
        pattern_hint="a time of day as HH:MM (24-hour)",
    ),
)
POLICY_FIELDS = (
    "invocations_days",
    "logs_days",
    "dlq_days",
    "workflow_executions_days",
    "auto_cleanup",
    "cleanup_time",
)
KEYS = {name: f"retention.{name}" for name in POLICY_FIELDS}
