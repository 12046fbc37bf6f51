"""python -m gfms_portal [--port 8200] | verify BUNDLE."""

from __future__ import annotations

from gfms_portal.cli import main

if __name__ == "__main__":
    main()
