"""The trust service's choices, as the config offers them (settings.py reads them here)."""

KEEP_REQUESTS = ("degraded", "all", "none")  # which requests verify can re-run (in memory)
UNKNOWN_TASK = ("hold", "allow")  # an irreversible action of a task with no recorded calls
APPROVAL = ("token", "open")  # who may approve a step: the operator token, or anyone
