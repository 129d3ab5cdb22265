"""The audit trail: recording events in the caller's transaction, and reading them back."""
