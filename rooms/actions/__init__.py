"""Every write to rooms goes through these modules; events themselves through rooms.events."""
