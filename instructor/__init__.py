"""Instructor-only tools (never part of the student handout)."""
