"""The console's pages, one module per section of the sidebar. Each module registers its pages with
`@console_page` (components/frame.py) when imported; `register_pages()` (re)imports them all."""

from __future__ import annotations

import importlib
import pkgutil
import sys


def page_modules() -> list[str]:
    found = pkgutil.iter_modules(__path__)
    return sorted(f"{__name__}.{m.name}" for m in found if not m.name.startswith("_"))


def register_pages() -> None:
    """Import every page module, re-running the decorators of those already imported (NiceGUI's test
    harness resets its routes between tests)."""
    for name in page_modules():
        module = sys.modules.get(name)
        if module is None:
            importlib.import_module(name)
        else:
            importlib.reload(module)
