"""The one rule for a version name that becomes a directory under a registry (adapter
versions, router versions): checked before any path is built from it.

No separator and no leading dot, so neither `..`, an absolute path nor a hidden entry can
reach outside the registry's `versions/` directory. `fullmatch`, not `match` with `$`:
`$` would admit a final newline.
"""

from __future__ import annotations

import re

VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RULE = "letters, digits, '.', '_', '-', not starting with '.', at most 64"


def is_version_name(version: str) -> bool:
    return VERSION_NAME.fullmatch(version) is not None and ".." not in version
