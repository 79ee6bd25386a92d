"""Where the gateway keeps what it prepares and stores on a machine.

The one default; `Settings.cache_dir` overrides it, and every path of the settings tree
that was not set on its own follows that value (see `deployments.settings`).
"""

from pathlib import Path

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "routing-gateway"
