"""Pure data and rules: no framework, no SQL."""
