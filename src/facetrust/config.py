"""Settings: one frozen class; explicit argument > FACETRUST_* environment > config file > default."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from facetrust.errors import ConfigurationError, InvalidParameterError
from facetrust.files import read_regular

__all__ = [
    "INDEX_BACKENDS",
    "PROFILES",
    "Settings",
    "default_cache_dir",
    "default_config_dir",
    "default_data_dir",
    "settings_or_default",
]

INDEX_BACKENDS = ("auto", "exact", "pq", "hnsw", "ivf")
PROFILES = ("default", "accurate")
TAIL_STATS_MODES = ("background", "enrolment", "deferred")

ENV_PREFIX = "FACETRUST_"
REPLICA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
REPLICA_RULE = "empty, or 1–64 of A–Z a–z 0–9 . _ - starting with a letter or digit"


def default_cache_dir() -> Path:
    """The per-user cache directory (platformdirs), where repaired models are kept."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("facetrust", appauthor=False))


def default_data_dir() -> Path:
    """The per-user data directory (platformdirs), where collections are kept by default."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("facetrust", appauthor=False))


def default_config_dir() -> Path:
    """The per-user config directory (platformdirs): config.toml, and the default keys."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("facetrust", appauthor=False))


def _default_config_file() -> Path:
    return default_config_dir() / "config.toml"


@dataclass(frozen=True)
class Settings:
    """Everything the engine can be told. Build once (``Settings.load()``) and pass it down.

    Attributes:
        cache_dir: where repaired, fp32-folded models are cached (None: user cache dir).
        max_image_bytes: images larger than this many bytes are refused (15 MB).
        max_image_pixels: images with more pixels than this are refused before decoding.
        decode_budget_pixels: decoded pixels alive at once across concurrent requests (about
            3 bytes each); a decode that finds no room within 10 s is refused as busy
            (ThrottlingException). At least max_image_pixels.
        min_face_size: faces whose shorter box side is below this (pixels) are reported as
            not recognisable.
        detection_threshold: detector confidence (0–1) below which candidates are dropped.
        detector_max_side: images are scaled so their longer side is at most this before
            detection; coordinates are mapped back to the original image.
        flip_augment: average each embedding with that of the mirrored face (slower, more
            accurate; see bench/lfw.py).
        threads: CPU threads for model inference (0: the runtime's default).
        batch_size: faces per embedding batch.
        data_dir: the data directory of collections (None: user data dir).
        index_backend: vector index for collections: auto, exact, pq or hnsw.
        policy_file: the deployment policy (TOML; docs/governance.md). None: built-in policy.
        template_key_file: file holding the base64 key that encrypts templates at rest (or
            set FACETRUST_TEMPLATE_KEY). Must not be inside the data directory.
        template_encryption: with no key configured, encrypt templates with the per-user
            default key (template.key in the user config directory, made on first use).
            False opts out: templates are then stored in the clear.
        calibration_file: a score → FMR calibration (JSON, from `facetrust calibrate`) used
            instead of the shipped one; it must be made for the engine's model id.
        cohort_file: a cohort normaliser (.npz, from `facetrust calibrate --cohort`): 1:1
            comparisons then use label-free score normalisation (docs/fairness.md). None: off.
        normaliser_file: a cluster normaliser fitted on your own labelled faces (JSON, from
            `facetrust calibrate --normaliser`), or a folder of such files, one per model: 1:1
            comparisons use the one made for the engine's model instead of the shipped one
            (docs/fairness.md). Not with cohort_file.
        score_normalisation: 1:1 comparisons use the cluster normaliser shipped for the model
            (label-free; docs/fairness.md) unless a calibration_file, cohort_file or
            normaliser_file is set; false: raw scores through the calibration table.
        probe_normalisation: 1:N searches read each probe's Similarity and FMR off its own
            scores against the gallery (docs/fairness.md); false: the global calibration only.
        face_tail_stats: when each gallery face's own statistics against its collection (its
            top 50 scores) are computed: "background" (by a server's background step, bounded
            and leased, so enrolment does not wait; without a server, by a catch-up pass),
            "enrolment" (as faces are indexed or erased) or "deferred" (only by a catch-up
            pass, for bulk imports; docs/collections.md).
        symmetric_scores: 1:N searches combine the probe's map with each gallery face's own
            (both sides' statistics; docs/fairness.md); false: the probe's side only.
        video_root: the folder the video operations may read (S3Object Bucket = a folder
            under it; docs/video.md). None: the video operations are refused.
        max_video_seconds: videos longer than this are refused (docs/video.md).
        max_video_pixels: videos whose frames have more pixels than this are refused.
        max_video_frames: videos with more frames than this are refused.
        max_video_sightings: a video in which more faces than this are seen (summed over the
            frames looked at) is refused as it is read: every sighting is kept until the
            video's end (about 6 KB each at the peak of a job's run).
        video_sample_fps: frames per second the detector looks at in a video (tracking fills in).
        video_job_retention_days: days a finished video job (StartFaceDetection/StartFaceSearch)
            keeps its results; a FaceSearch job's never outlive its collection purpose's
            retention_days. Then Get* answers as for an unknown job and the retention sweep
            deletes the job (docs/video.md).
        profile: the embedding profile: "default" (YuNet + SFace) or "accurate" (SFace fused
            with dlib's recogniser; needs ``pip install 'facetrust[accurate]'``; docs/engine.md).
        replica_id: this server's name among replicas over one store (docs/replicas.md): its own
            index snapshot folder. Empty (the default): the data directory's ``index`` folder.
        retention_sweep_seconds: how often a server runs the retention sweep (one replica at a
            time, under a lease; 0: never; otherwise 1 second to a year, as each sweep is audited).
        vacuum_seconds: how often, at most, a server vacuums the store (``facetrust store
            vacuum``: an erasure's rows can stay in the database's files until then), when
            something was erased since the last vacuum (one replica at a time, under a lease;
            0: never; otherwise 1 second to a year, as each vacuum rewrites the store and is
            audited). An erasure's storage is reclaimed within this time (and a few seconds).
        change_log_days: how long the store keeps a row of its change log (every face added or
            deleted, which each replica's index follows; docs/replicas.md): older rows are deleted
            by the retention sweep, each collection's newest kept with no face key. An index closed
            for longer is rebuilt from the faces when it opens (0: never delete; otherwise 1 to 3650).
        lease_seconds: how long a replica's lease (the sweep, a video job) lasts unrenewed:
            after a replica dies, another takes its work over within this time.
        store: where collections, faces, the audit log and the API keys live: "sqlite" (a file
            in the data directory; also None, the default) or a ``postgresql://…`` URL shared by
            replicas (docs/store.md).
    """

    cache_dir: Path | None = None
    max_image_bytes: int = 15 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    decode_budget_pixels: int = 100_000_000
    min_face_size: int = 40
    detection_threshold: float = 0.5
    detector_max_side: int = 640
    flip_augment: bool = True
    threads: int = 0
    batch_size: int = 16
    data_dir: Path | None = None
    index_backend: str = "auto"
    policy_file: Path | None = None
    template_key_file: Path | None = None
    template_encryption: bool = True
    calibration_file: Path | None = None
    cohort_file: Path | None = None
    normaliser_file: Path | None = None
    score_normalisation: bool = True
    probe_normalisation: bool = True
    face_tail_stats: str = "background"
    symmetric_scores: bool = False
    video_root: Path | None = None
    max_video_seconds: float = 3600.0
    max_video_pixels: int = 3840 * 2160
    max_video_frames: int = 500_000
    max_video_sightings: int = 200_000
    video_sample_fps: float = 10.0
    video_job_retention_days: float = 7.0
    profile: str = "default"
    replica_id: str = ""
    retention_sweep_seconds: float = 3600.0
    vacuum_seconds: float = 86400.0
    change_log_days: float = 7.0
    lease_seconds: float = 30.0
    store: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name))
        for name in (
            "cache_dir",
            "data_dir",
            "policy_file",
            "template_key_file",
            "calibration_file",
            "cohort_file",
            "normaliser_file",
            "video_root",
        ):
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)) and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value).expanduser())
        checks: list[tuple[str, bool, str]] = [
            ("max_image_bytes", self.max_image_bytes > 0, "a positive number of bytes"),
            ("max_image_pixels", self.max_image_pixels > 0, "a positive number of pixels"),
            (
                "decode_budget_pixels",
                self.decode_budget_pixels >= self.max_image_pixels,
                f"at least max_image_pixels ({self.max_image_pixels})",
            ),
            ("min_face_size", self.min_face_size >= 1, "at least 1 pixel"),
            ("detection_threshold", 0.0 < self.detection_threshold < 1.0, "between 0 and 1"),
            ("detector_max_side", 64 <= self.detector_max_side <= 4096, "between 64 and 4096"),
            ("threads", 0 <= self.threads <= 256, "between 0 and 256"),
            ("batch_size", 1 <= self.batch_size <= 1024, "between 1 and 1024"),
            ("index_backend", self.index_backend in INDEX_BACKENDS, "one of " + ", ".join(INDEX_BACKENDS)),
            ("max_video_seconds", self.max_video_seconds > 0, "a positive number of seconds"),
            ("max_video_pixels", self.max_video_pixels > 0, "a positive number of pixels"),
            ("max_video_frames", self.max_video_frames > 0, "a positive number of frames"),
            ("max_video_sightings", self.max_video_sightings > 0, "a positive number of faces"),
            ("video_sample_fps", 0.1 <= self.video_sample_fps <= 240, "between 0.1 and 240 frames per second"),
            (
                "video_job_retention_days",
                0 < self.video_job_retention_days <= 1095,
                "a number of days above 0 and at most 1095 (three years)",
            ),
            ("profile", self.profile in PROFILES, "one of " + ", ".join(PROFILES)),
            ("replica_id", self.replica_id == "" or bool(REPLICA_ID.fullmatch(self.replica_id)), REPLICA_RULE),
            (
                "retention_sweep_seconds",
                self.retention_sweep_seconds == 0 or 1 <= self.retention_sweep_seconds <= 31_536_000,
                "0 (never) or from 1 to 31536000 seconds (a year)",
            ),
            (
                "vacuum_seconds",
                self.vacuum_seconds == 0 or 1 <= self.vacuum_seconds <= 31_536_000,
                "0 (never) or from 1 to 31536000 seconds (a year)",
            ),
            (
                "change_log_days",
                self.change_log_days == 0 or 1 <= self.change_log_days <= 3650,
                "0 (never pruned) or from 1 to 3650 days",
            ),
            ("lease_seconds", 1 <= self.lease_seconds <= 86400, "between 1 and 86400 seconds"),
            ("store", _store_ok(self.store), "'sqlite' or a postgresql://… URL"),
            ("face_tail_stats", self.face_tail_stats in TAIL_STATS_MODES, "one of " + ", ".join(TAIL_STATS_MODES)),
        ]
        for name, ok, expected in checks:
            if not ok:
                shown = repr(getattr(self, name))
                if name == "store" and ":" in str(self.store):  # a malformed URL may still hold a password
                    shown = repr(str(self.store).split(":", 1)[0] + ":…")
                raise ConfigurationError(f"Setting {name}={shown} is invalid: must be {expected}", setting=name)

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else default_cache_dir()

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else default_data_dir()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: Path | None = None,
    ) -> Settings:
        """Build settings from (highest first) ``overrides``, the environment, a TOML file.

        The file is ``config_file``, else ``$FACETRUST_CONFIG``, else
        ``<user config dir>/facetrust/config.toml`` when it exists.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = config_file
        if path is None and ENV_PREFIX + "CONFIG" in env:
            path = _config_path(env[ENV_PREFIX + "CONFIG"])
        if path is None and _default_config_file().is_file():
            path = _default_config_file()
        if path is not None:
            values.update(_read_file(path))
        given = {name for name, value in (overrides or {}).items() if value is not None}
        for f in fields(cls):
            key = ENV_PREFIX + f.name.upper()
            if key in env and f.name not in given:  # an explicit value wins: the variable is not even read
                values[f.name] = _coerce(f.name, env[key], key)
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigurationError(
                f"Unknown setting {unknown[0]!r}; known: {', '.join(f.name for f in fields(cls))}",
                setting=unknown[0],
            )
        for f in fields(cls):
            if f.name in values and isinstance(values[f.name], str):
                values[f.name] = _coerce(f.name, values[f.name], f.name)
        return cls(**values)


_TYPES: dict[str, type] = {
    "cache_dir": Path,
    "max_image_bytes": int,
    "max_image_pixels": int,
    "decode_budget_pixels": int,
    "min_face_size": int,
    "detection_threshold": float,
    "detector_max_side": int,
    "flip_augment": bool,
    "threads": int,
    "batch_size": int,
    "data_dir": Path,
    "index_backend": str,
    "policy_file": Path,
    "template_key_file": Path,
    "template_encryption": bool,
    "calibration_file": Path,
    "cohort_file": Path,
    "normaliser_file": Path,
    "score_normalisation": bool,
    "probe_normalisation": bool,
    "face_tail_stats": str,
    "symmetric_scores": bool,
    "video_root": Path,
    "max_video_seconds": float,
    "max_video_pixels": int,
    "max_video_frames": int,
    "max_video_sightings": int,
    "video_sample_fps": float,
    "video_job_retention_days": float,
    "profile": str,
    "replica_id": str,
    "retention_sweep_seconds": float,
    "vacuum_seconds": float,
    "change_log_days": float,
    "lease_seconds": float,
    "store": str,
}


def _store_ok(value: str | None) -> bool:
    return value is None or value == "sqlite" or value.startswith(("postgresql://", "postgres://"))


def _check_type(name: str, value: Any) -> None:
    """Refuse a value of the wrong type (e.g. from a TOML file) before its range is checked."""
    kind = _TYPES[name]
    if name == "store" and value is None:  # the default: SQLite in the data directory
        return
    if kind is Path:
        ok = value is None or isinstance(value, (str, os.PathLike))
        text = os.fspath(value) if ok and value is not None else ""
        if ok and value is not None and (not str(text).strip() or "\0" in str(text)):
            raise ConfigurationError(  # "" would be the current directory; NUL no path at all
                f"Setting {name}={value!r} is invalid: must be a path (not empty, no NUL character)", setting=name
            )
    elif kind is bool:
        ok = isinstance(value, bool)
    elif kind is str:
        ok = isinstance(value, str)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise ConfigurationError(f"Setting {name}={value!r} is invalid: must be {_KINDS[kind]}", setting=name)


_KINDS: dict[type, str] = {Path: "a path", bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _coerce(name: str, raw: str, where: str) -> Any:
    kind = _TYPES.get(name)
    if kind is None:
        raise ConfigurationError(f"Unknown setting {where}", setting=name)
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind is Path:
            return _path(raw)
        if kind is str:
            return raw
        return kind(raw)
    except ValueError:
        what = "a path (not empty, no NUL character)" if kind is Path else f"a valid {kind.__name__}"
        raise ConfigurationError(f"Setting {where}={raw!r} is not {what}", setting=name) from None


def _path(raw: str) -> Path:
    """``raw`` as a path; ValueError for an empty one (it would silently mean the current directory)
    or one holding a NUL character."""
    if not raw.strip() or "\0" in raw:
        raise ValueError(raw)
    return Path(raw).expanduser()


def _config_path(raw: str) -> Path:
    """``$FACETRUST_CONFIG`` as a path: an empty value is an error, not the current directory."""
    try:
        return _path(raw)
    except ValueError:
        raise ConfigurationError(
            f"Setting {ENV_PREFIX}CONFIG={raw!r} is not a path (not empty, no NUL character); "
            "unset it to read no config file",
            setting="config",
        ) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(read_regular(path).decode("utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"Config file {path} does not exist", setting="config") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"Config file {path} is not valid TOML: {exc}", setting="config") from None
    except (OSError, ValueError) as exc:  # a directory, unreadable, not UTF-8, a NUL in the name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigurationError(f"Config file {path} cannot be read: {reason}", setting="config") from None
    section = data.get("facetrust", data)
    beside = sorted(set(data) - {"facetrust"}) if "facetrust" in data else []
    if beside:
        raise ConfigurationError(
            f"Config file {path}: {', '.join(beside)} outside the [facetrust] table would not be read; "
            "put every setting under [facetrust], or drop the table",
            setting="config",
        )
    if not isinstance(section, dict):
        raise ConfigurationError(f"Config file {path}: [facetrust] must be a table", setting="config")
    return dict(section)


def settings_or_default(settings: object) -> Settings:
    """``settings``, or the defaults for None; anything that is not a ``Settings`` is refused by name."""
    if settings is None:
        return Settings()
    if not isinstance(settings, Settings):
        raise InvalidParameterError(f"settings must be a Settings; got {type(settings).__name__}", parameter="settings")
    return settings
