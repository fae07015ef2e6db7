"""DRF content negotiation: always JSON (kept apart from matrixhs.http, which APIView needs)."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import BaseContentNegotiation


class JsonOnlyNegotiation(BaseContentNegotiation):
    """Always answer JSON, whatever the Accept header says."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type
