"""Canonical -> canonical for one target: pure functions, no I/O.

``folders`` reshapes a source folder tree to a target's limits (name rules, collisions, depth,
folder count) before anything is written; ``fields`` fits an asset's metadata, filename and size
to what the target accepts. Both read only :class:`connectors.base.Limits` and return plain
values plus plain-English warnings and errors for the plan and the report.
"""
