"""Node.js templates for the gallery (engine/services/templates.py)."""

from __future__ import annotations

from engine.services.templates import Template

TEMPLATES: tuple[Template, ...] = ()
