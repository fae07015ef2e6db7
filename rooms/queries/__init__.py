"""Reads of rooms: access checks, visibility, event formatting, timelines, state."""
