"""Entry points of the capability commands (`router`, `adapters`, `retrieval`).

Each capability's command line reads no settings; here the settings tree is read once
and each command is handed what it needs, as its click context's `obj`.
"""

from __future__ import annotations

from gateway.settings import Settings


def router() -> None:
    from router.cli import main
    from router.context import RouterContext
    from shadow.store import read_pairs

    main(RouterContext(read_pairs=read_pairs, registry=Settings().router_registry()))


def adapters() -> None:
    from adapters.cli import main

    main(Settings().adapter_workspace())


def retrieval() -> None:
    from retrieval.cli import main

    main(Settings().retrieval)
