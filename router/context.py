"""What the `router` command line is handed by its entry point (`deployments.commands`).

`router/` reads no settings and opens no other package's store: the entry point reads
the settings tree once and passes the shadow pair reader and the version registry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from router.flywheel import PairReader
from router.registry import RouterRegistry


@dataclass(frozen=True)
class RouterContext:
    read_pairs: PairReader | None = None
    registry: RouterRegistry | None = None
    # The step routers' registries, by the tier above large whose climb each decides.
    steps: Mapping[str, RouterRegistry] = field(default_factory=dict)
