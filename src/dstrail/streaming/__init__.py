"""Pushing the trail to stream destinations (SIEMs, event buses): formats, transports and the
workers that deliver each destination's events after its cursor, at least once and in order."""
