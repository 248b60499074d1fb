"""The errors of user templates, apart so that both template languages (jinja2 and the Go-template translator)
raise them without importing each other."""

from __future__ import annotations

from ..errors import DomainError


class TemplateError(DomainError, ValueError):
    """A template or expression that does not compile or fails while rendering."""


class TemplateLimitError(TemplateError):
    """A template stopped because it went over one of its ``Limits``."""
