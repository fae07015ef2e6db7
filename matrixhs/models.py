"""Tables every app shares."""

from __future__ import annotations

from django.db import models


class StreamCounter(models.Model):
    """The last position handed out in one stream (see matrixhs.streams)."""

    name = models.CharField(max_length=64, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
