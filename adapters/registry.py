"""The adapter registry: versions on disk, one active (and one candidate) per domain.

Layout under the configured directory:

    state.json                 which version is active / candidate per domain, event history
    versions/<version>/        adapter_config.json, adapter_model.safetensors, manifest.json

The state file is the single source of truth the small-tier replicas and the ingress
poll; every change bumps its `generation`, so readers converge on the same set.
Writers serialise on a lock file and replace the state atomically, so a reader never
sees half a change and a failed operation changes nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Iterator, Literal

from pydantic import BaseModel, Field, ValidationError

from adapters.errors import (
    AdapterNotFound,
    EvaluationFailed,
    IncompatibleAdapter,
    InvalidAdapter,
    RollbackUnavailable,
    StaleRollback,
)
from adapters.manifest import MANIFEST, PEFT_CONFIG, WEIGHTS, AdapterManifest, BaseFingerprint, check_version
from model_files.state_file import read_state, sha256_file
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

Event = Literal["registered", "activated", "rolled_back", "unloaded", "candidate", "candidate_cleared"]
DOMAIN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class HistoryEntry(Change):
    event: Event


class DomainState(BaseModel):
    active: str | None = None
    candidate: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)


class RegistryState(VersionedState):
    domains: dict[str, DomainState] = Field(default_factory=dict)


class AdapterRef(BaseModel):
    """What a replica needs to serve one version."""

    domain: str
    version: str
    path: str


def check_domain(domain: str) -> str:
    # `small:auto` asks for the adapter the selector picks: no domain can be called that.
    if not DOMAIN.match(domain) or domain == "auto":
        raise AdapterNotFound(
            f"'{domain}' is not a valid domain name (lowercase letters, digits, underscores)"
        )
    return domain


class AdapterRegistry:
    def __init__(
        self,
        root: Path,
        base: BaseFingerprint | None = None,
        max_rank: int = 16,
        retention: timedelta = timedelta(days=30),
        clock: Clock = now_utc,
    ) -> None:
        self.root = root
        self._base = base
        self._max_rank = max_rank
        self._retention = retention
        self._clock = clock

    # ---- reading -------------------------------------------------------------------

    def base_fingerprint(self) -> BaseFingerprint | None:
        return self._base

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def state(self) -> RegistryState:
        return read_state(self.state_path, RegistryState)

    def version_dir(self, version: str) -> Path:
        """Every path to a version is made here: the name is checked before it is joined."""
        return self.root / "versions" / check_version(version)

    def manifest(self, version: str) -> AdapterManifest:
        path = self.version_dir(version) / MANIFEST
        if not path.exists():
            raise AdapterNotFound(f"no adapter version '{version}' in the registry")
        return AdapterManifest.model_validate_json(path.read_bytes())

    def versions(self, domain: str | None = None) -> list[AdapterManifest]:
        found = []
        for path in sorted((self.root / "versions").glob(f"*/{MANIFEST}")):
            manifest = AdapterManifest.model_validate_json(path.read_bytes())
            if domain is None or manifest.domain == domain:
                found.append(manifest)
        return sorted(found, key=lambda m: (m.domain, _number(m.version)))

    def ref(self, version: str) -> AdapterRef:
        manifest = self.manifest(version)
        return AdapterRef(domain=manifest.domain, version=version, path=str(self.version_dir(version)))

    def served(self, state: RegistryState | None = None) -> list[AdapterRef]:
        """Every version a replica should hold: the active and candidate ones."""
        state = state or self.state()
        names = {v for d in state.domains.values() for v in (d.active, d.candidate) if v}
        return [self.ref(v) for v in sorted(names)]

    # ---- registering -----------------------------------------------------------------

    def next_version(self, domain: str, today: date | None = None) -> str:
        numbers = [_number(m.version) for m in self.versions(check_domain(domain))]
        day = (today or self._clock().date()).isoformat()
        return f"{domain}-v{max(numbers, default=0) + 1}-{day}"

    def validate(self, source: Path) -> AdapterManifest:
        """Check a PEFT adapter directory against this registry's base model and limits."""
        if not source.is_dir():
            raise InvalidAdapter(f"adapter directory {source} does not exist")
        for name in (PEFT_CONFIG, WEIGHTS, MANIFEST):
            if not (source / name).is_file():
                raise InvalidAdapter(f"adapter directory {source} has no {name}")
        try:
            manifest = AdapterManifest.model_validate_json((source / MANIFEST).read_bytes())
            peft = json.loads((source / PEFT_CONFIG).read_text())
        except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidAdapter(f"adapter directory {source} has an unreadable manifest or config: {exc}") from exc
        actual = sha256_file(source / WEIGHTS)
        if actual != manifest.sha256:
            raise InvalidAdapter(
                f"adapter weights in {source} do not match their manifest (sha256 {actual[:12]}…, "
                f"manifest {manifest.sha256[:12]}…): corrupt or replaced"
            )
        rank = int(peft.get("r", manifest.rank))
        if rank > self._max_rank:
            raise IncompatibleAdapter(
                f"adapter rank {rank} exceeds the small tier's max_lora_rank {self._max_rank}"
            )
        self._check_base(manifest, source)
        check_domain(manifest.domain)
        return manifest

    def _check_base(self, manifest: AdapterManifest, source: Path) -> None:
        if self._base is None:
            return
        mine = self._base.model_dump(exclude={"name"})
        theirs = manifest.base.model_dump(exclude={"name"})
        if mine != theirs:
            raise IncompatibleAdapter(
                f"adapter in {source} was trained on base model '{manifest.base.name}' "
                f"({theirs}), but the small tier serves '{self._base.name}' ({mine})"
            )
        _check_weight_shapes(source / WEIGHTS, self._base.hidden_size)

    def register(self, source: Path, force: bool = False, activate: bool = False) -> AdapterManifest:
        """Copy a validated adapter in under its version name; with `activate`, make it
        the domain's active version in the same state change (one generation for replicas)."""
        manifest = self.validate(source)
        if manifest.eval is not None and not manifest.eval.passed and not (force or manifest.forced):
            raise EvaluationFailed(f"{manifest.version}: {manifest.eval.verdict()} (use force to register anyway)")
        with self._locked() as state:
            target = self.version_dir(manifest.version)
            if target.exists():
                if sha256_file(target / WEIGHTS) != manifest.sha256:
                    raise InvalidAdapter(f"version {manifest.version} already exists with other weights")
                if activate:  # the same version again: idempotent
                    self._set_active(state, manifest.domain, manifest.version)
                return manifest
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".incoming-"))
            for name in (PEFT_CONFIG, WEIGHTS, MANIFEST):
                shutil.copy2(source / name, staging / name)
            if force and not manifest.forced:
                forced = manifest.model_copy(update={"forced": True})
                (staging / MANIFEST).write_text(forced.model_dump_json(indent=2))
                manifest = forced
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(target)
            self._event(state, manifest.domain, "registered", manifest.version)
            if activate:
                self._set_active(state, manifest.domain, manifest.version)
        return manifest

    # ---- state changes ---------------------------------------------------------------

    def activate(self, domain: str, version: str) -> RegistryState:
        self._require(domain, version)
        with self._locked() as state:
            self._set_active(state, domain, version)
        return state

    def _set_active(self, state: RegistryState, domain: str, version: str) -> None:
        entry = state.domains.setdefault(domain, DomainState())
        entry.active = version
        if entry.candidate == version:
            entry.candidate = None
        self._event(state, domain, "activated", version)

    def rollback(
        self, domain: str, version: str | None = None, *, expected_active: str | None = None
    ) -> RegistryState:
        """Back to `version`, or to the version active before the current one.

        `expected_active` is the version the caller decided to undo: checked under the lock,
        so a version activated since that decision is never rolled back unjudged."""
        with self._locked() as state:
            entry = state.domains.get(check_domain(domain))
            if entry is None:
                raise AdapterNotFound(f"no adapters for domain '{domain}'")
            check_expected(
                expected_active, entry.active,
                f"domain '{domain}' no longer runs {expected_active} (active: {entry.active}): "
                "not rolled back",
                StaleRollback,
            )
            target = version or previous_active(entry)
            if target is None:
                raise RollbackUnavailable(f"domain '{domain}' has no earlier version to roll back to")
            manifest = self._require(domain, target)
            check_window(target, manifest.created_at, self._clock(), self._retention, RollbackUnavailable)
            entry.active = target
            self._event(state, domain, "rolled_back", target)
        return state

    def unload(self, domain: str) -> RegistryState:
        """The domain's queries go to the base model; its versions stay for rollback."""
        with self._locked() as state:
            entry = state.domains.get(check_domain(domain))
            if entry is None or (entry.active is None and entry.candidate is None):
                raise AdapterNotFound(f"domain '{domain}' has no loaded adapter")
            entry.active = entry.candidate = None
            self._event(state, domain, "unloaded", None)
        return state

    def set_candidate(self, domain: str, version: str | None) -> RegistryState:
        """The canary slot: served beside the active version (shadow traffic), never routed."""
        if version is not None:
            self._require(domain, version)
        with self._locked() as state:
            entry = state.domains.setdefault(check_domain(domain), DomainState())
            entry.candidate = version
            self._event(state, domain, "candidate" if version else "candidate_cleared", version)
        return state

    def prune(self) -> list[str]:
        """Delete versions past the retention window that are neither active nor candidate."""
        removed = []
        with self._locked() as state:
            keep = {v for d in state.domains.values() for v in (d.active, d.candidate) if v}
            for manifest in self.versions():
                old = self._clock() - manifest.created_at > self._retention
                if old and manifest.version not in keep:
                    shutil.rmtree(self.version_dir(manifest.version))
                    removed.append(manifest.version)
        return removed

    # ---- internals -------------------------------------------------------------------

    def _require(self, domain: str, version: str) -> AdapterManifest:
        manifest = self.manifest(version)
        if manifest.domain != check_domain(domain):
            raise AdapterNotFound(f"version '{version}' belongs to domain '{manifest.domain}', not '{domain}'")
        weights = self.version_dir(version) / WEIGHTS
        if not weights.exists() or sha256_file(weights) != manifest.sha256:
            raise InvalidAdapter(f"the stored weights of {version} are missing or corrupt")
        return manifest

    def _event(self, state: RegistryState, domain: str, event: Event, version: str | None) -> None:
        entry = state.domains.setdefault(domain, DomainState())
        append_bounded(entry.history, HistoryEntry(event=event, version=version, at=self._clock()))

    @contextmanager
    def _locked(self) -> Iterator[RegistryState]:
        """Read-modify-write under an exclusive lock; written back only on success."""
        with changing(self.state_path, RegistryState) as state:
            yield state


def previous_active(entry: DomainState) -> str | None:
    return previous_version(entry.history, entry.active)


def _number(version: str) -> int:
    match = re.search(r"-v(\d+)-", version)
    return int(match.group(1)) if match else 0


def _check_weight_shapes(weights: Path, hidden_size: int) -> None:
    """A LoRA A matrix of q_proj reads the hidden state: its width is the base's hidden size."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="numpy") as handle:
            shapes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise InvalidAdapter(f"adapter weights {weights} are unreadable: {exc}") from exc
    for key, shape in shapes.items():
        if "q_proj.lora_A" in key and shape[-1] != hidden_size:
            raise IncompatibleAdapter(
                f"adapter weights expect hidden size {shape[-1]}, the base model has {hidden_size}"
            )
