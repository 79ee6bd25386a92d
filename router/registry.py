"""Router versions: trained router models on disk, one active and one candidate.

Layout under the configured directory:

    state.json                  active / candidate version, event history, generation
    versions/<version>/         the model artifact (`router train --out`) + version.json

Every ingress replica polls `state.json` and swaps its scorer when the active (or
candidate) version changes; with no active version it serves the model it was started
with (`router.model_dir`, the shipped default). Registering checks the artifact against
this code's feature schema and the gateway's tiers, so a model that would misroute is
refused before it can be activated.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

from pydantic import BaseModel, Field

from model_files.state_file import read_state
from model_files.versioned import (
    Change,
    Clock,
    VersionedState,
    append_bounded,
    changing,
    check_expected,
    check_window,
    now_utc,
    previous_version,
)
from model_files.version_names import RULE, is_version_name
from router.errors import InvalidVersion, RollbackUnavailable, StaleChange, VersionNotFound, VersionRefused
from router.model import Manifest, RouterModel, SchemaMismatch

ENTRY = "version.json"
Event = Literal["registered", "activated", "rolled_back", "candidate", "candidate_cleared", "deactivated"]
# Eval figures copied from the artifact's manifest into the version entry (what `list` shows).
EVAL_KEYS = ("out_of_fold_apgr", "out_of_fold_ece", "out_of_fold_auc_large_better", "eval")


class RouterVersion(BaseModel):
    """What the registry knows of one version, written beside its artifact."""

    version: str
    model_version: str = Field(description="The artifact's own version (`router train --version`)")
    schema_hash: str
    data_digest: str | None = None
    tiers: dict[str, str]
    eval: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(description="When the artifact was trained")
    registered_at: datetime


class HistoryEntry(Change):
    event: Event
    reason: str | None = None


class RouterState(VersionedState):
    active: str | None = None
    candidate: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)


class RouterRegistry:
    def __init__(
        self,
        root: Path,
        tiers: Mapping[str, str] | None = None,
        retention: timedelta = timedelta(days=30),
        clock: Clock = now_utc,
    ) -> None:
        self.root = root
        # Tier role -> the tier a model's outcomes must come from (the gateway's own).
        self._tiers = dict(tiers or {"small": "small", "large": "large"})
        self._retention = retention
        self._clock = clock

    # ---- reading -------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def state(self) -> RouterState:
        return read_state(self.state_path, RouterState)

    def path_of(self, version: str) -> Path:
        """Every path to a version is made here: the name is checked before it is joined."""
        if not is_version_name(version):
            raise InvalidVersion(f"'{version[:80]}' is not a router version name ({RULE})")
        return self.root / "versions" / version

    def entry(self, version: str) -> RouterVersion:
        path = self.path_of(version) / ENTRY
        if not path.exists():
            raise VersionNotFound(f"no router version '{version}' in the registry")
        return RouterVersion.model_validate_json(path.read_bytes())

    def versions(self) -> list[RouterVersion]:
        found = [RouterVersion.model_validate_json(p.read_bytes())
                 for p in (self.root / "versions").glob(f"*/{ENTRY}")]
        return sorted(found, key=lambda v: _number(v.version))

    # ---- registering -----------------------------------------------------------------

    def check(self, source: Path) -> Manifest:
        """The artifact's manifest, if this gateway can serve it; else `VersionRefused`."""
        try:
            model = RouterModel.load(source)
        except FileNotFoundError as exc:
            raise VersionRefused(str(exc)) from None
        except SchemaMismatch as exc:
            raise VersionRefused(str(exc)) from None
        manifest = model.manifest
        theirs = {role: _tier_of(target) for role, target in (manifest.tiers or {}).items()}
        if theirs != self._tiers:
            trained = manifest.tiers or "another model pair (no tiers recorded)"
            raise VersionRefused(
                f"router model {source} was trained on the outcomes of {trained}; this gateway "
                f"routes between {self._tiers}. Train it on outcomes collected from these tiers "
                "(`router collect`, `router grade`, `router train --small-col score:small "
                "--large-col score:large`)."
            )
        return manifest

    def register(self, source: Path, eval_figures: Mapping[str, Any] | None = None) -> RouterVersion:
        """Copy a checked artifact in under the next version name (not activated)."""
        manifest = self.check(source)
        with self._locked() as state:
            version = self._next_version()
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".incoming-"))
            shutil.copytree(source, staging, dirs_exist_ok=True)
            entry = RouterVersion(
                version=version, model_version=manifest.version, schema_hash=manifest.schema_hash,
                data_digest=manifest.metrics.get("data_digest"), tiers=manifest.tiers or {},
                eval={**{k: manifest.metrics[k] for k in EVAL_KEYS if k in manifest.metrics},
                      **dict(eval_figures or {})},
                created_at=_parse_time(manifest.created_at, self._clock()), registered_at=self._clock(),
            )
            (staging / ENTRY).write_text(entry.model_dump_json(indent=2))
            self.path_of(version).parent.mkdir(parents=True, exist_ok=True)
            staging.rename(self.path_of(version))
            self._event(state, "registered", version)
        return entry

    # ---- state changes ---------------------------------------------------------------

    def activate(self, version: str, *, expected_candidate: str | None = None, reason: str | None = None) -> RouterState:
        """Make `version` active. `expected_candidate`: only if it is still the candidate
        (a canary's promotion must not activate a slot someone changed meanwhile)."""
        self.entry(version)
        with self._locked() as state:
            check_expected(
                expected_candidate, state.candidate,
                f"{expected_candidate} is no longer the candidate ({state.candidate})", StaleChange,
            )
            state.active = version
            if state.candidate == version:
                state.candidate = None
            self._event(state, "activated", version, reason)
        return state

    def set_candidate(self, version: str | None, *, expected: str | None = None, reason: str | None = None) -> RouterState:
        """The canary slot: scored beside the active version on live traffic, never routing."""
        if version is not None:
            self.entry(version)
        with self._locked() as state:
            check_expected(
                expected, state.candidate, f"{expected} is no longer the candidate ({state.candidate})",
                StaleChange,
            )
            if version is not None and version == state.active:
                raise VersionRefused(f"{version} is already the active version")
            state.candidate = version
            self._event(state, "candidate" if version else "candidate_cleared", version, reason)
        return state

    def rollback(self, version: str | None = None, *, expected_active: str | None = None) -> RouterState:
        """Back to `version`, or to the version active before the current one (within the
        rollback window). With no earlier version, back to the built-in default model."""
        with self._locked() as state:
            check_expected(
                expected_active, state.active,
                f"{expected_active} is no longer active ({state.active}): not rolled back", StaleChange,
            )
            if state.active is None and version is None:
                raise RollbackUnavailable("no router version is active: the default model serves")
            target = version or previous_version(state.history, state.active)
            if target is not None:
                registered_at = self.entry(target).registered_at
                check_window(target, registered_at, self._clock(), self._retention, RollbackUnavailable)
            state.active = target
            self._event(state, "rolled_back" if target else "deactivated", target)
        return state

    def prune(self) -> list[str]:
        """Delete versions past the rollback window that are neither active nor candidate."""
        removed = []
        with self._locked() as state:
            keep = {state.active, state.candidate}
            for entry in self.versions():
                if entry.version not in keep and self._clock() - entry.registered_at > self._retention:
                    shutil.rmtree(self.path_of(entry.version))
                    removed.append(entry.version)
        return removed

    # ---- internals -------------------------------------------------------------------

    def _next_version(self, today: date | None = None) -> str:
        numbers = [_number(p.name) for p in (self.root / "versions").glob("router-v*")]
        day = (today or self._clock().date()).isoformat()
        return f"router-v{max(numbers, default=0) + 1}-{day}"

    def _event(self, state: RouterState, event: Event, version: str | None, reason: str | None = None) -> None:
        append_bounded(state.history, HistoryEntry(event=event, version=version, at=self._clock(), reason=reason))

    @contextmanager
    def _locked(self) -> Iterator[RouterState]:
        with changing(self.state_path, RouterState) as state:
            yield state



def _tier_of(target: str) -> str:
    """`small:billing` was answered by the small tier (with an adapter)."""
    return target.split(":", 1)[0]


def _number(version: str) -> int:
    match = re.search(r"-v(\d+)-", version)
    return int(match.group(1)) if match else 0


def _parse_time(text: str, default: datetime) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def step_registries(root: Path, order: Sequence[str]) -> dict[str, RouterRegistry]:
    """One registry per tier above large (`order`: the tiers, cheapest first), under
    `root/<tier>`: its versions are step routers trained on the outcomes of the tier below it
    (role small) and itself (role large)."""
    return {
        tier: RouterRegistry(root / tier, tiers={"small": order[i - 1], "large": tier})
        for i, tier in enumerate(order) if i >= 2
    }
