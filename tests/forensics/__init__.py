"""Forensics: entitlements, timelines, the follower and rebuild; findings."""
