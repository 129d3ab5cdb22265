"""Use cases, one module per family. Services never commit: the caller's transaction does."""
