"""What a cascade did to one request: read by the response headers and the spend charge."""

from __future__ import annotations

from dataclasses import dataclass, field

from cascade.verdict import Verdict
from engines.types import Usage


@dataclass
class CascadeTrace:
    """The answers a cascade did not serve (each lower tier's, with its usage) and the last
    verdict. The tier that served is the request's decision; the client's usage is every
    answer's, and the spend charge splits it back per tier with `parts`."""

    passed_over: list[tuple[str, Usage]] = field(default_factory=list)
    verdict: Verdict | None = None

    def tiers(self, served: str) -> list[str]:
        return [tier for tier, _ in self.passed_over] + [served]

    def headers(self, served: str) -> dict[str, str]:
        headers = {"x-gateway-cascade": ">".join(self.tiers(served))}
        if self.verdict is not None:
            headers["x-gateway-cascade-verdict"] = self.verdict.describe()
        return headers

    def parts(self, served: str, usage: Usage) -> list[tuple[str, Usage]]:
        """`usage` (what the client saw) per tier: each passed-over answer's own, the rest the served tier's."""
        prompt = usage.prompt_tokens - sum(u.prompt_tokens for _, u in self.passed_over)
        completion = usage.completion_tokens - sum(u.completion_tokens for _, u in self.passed_over)
        rest = Usage(prompt_tokens=max(prompt, 0), completion_tokens=max(completion, 0), estimated=usage.estimated)
        return [*self.passed_over, (served, rest)]
