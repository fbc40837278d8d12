"""The engines of one service, one per embedding profile: the process's own, the others on first use.

A collection is bound for life to the model it was created with (``CollectionRow.model``), and
the model names its profile: a fused SFace + dlib model id is the ``accurate`` profile, any other
the ``default`` one. So the profile needs no column of its own: ``profile_of(row.model)`` reads
it, and ``ProfileEngines.for_model`` hands each collection the engine that made its templates,
with that engine's own calibration table (which the per-probe normalisation of 1:N search reads).
The service's own engine (the setting ``profile``) serves new collections by default and
CompareFaces; another profile's engine is loaded once, when a collection or a request first needs
it, so a server of the default profile loads dlib only if an ``accurate`` collection is used.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from facetrust.config import PROFILES, Settings
from facetrust.errors import ConfigurationError, InvalidParameterError, ModelMismatchError
from facetrust.governance.actor import shown

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from pathlib import Path

    from facetrust.engine import FaceEngine
    from facetrust.store.sqlite import CollectionRow

__all__ = ["ProfileEngines", "check_profile", "profile_of"]

log = logging.getLogger(__name__)

FUSED_PREFIX = "fused-sface-dlib:"  # facetrust.models.fused.NAME, without importing the models here
FUSED_DIM = 256  # the fused template: SFace's 128 floats and dlib's 128


def profile_of(model_id: str) -> str:
    """The profile whose engine makes embeddings of ``model_id``: ``accurate`` (fused) or ``default``."""
    return "accurate" if model_id.startswith(FUSED_PREFIX) else "default"


def check_profile(profile: str) -> str:
    """``profile`` when it is a known profile name; ``InvalidParameterError`` listing them otherwise."""
    if profile not in PROFILES:
        raise InvalidParameterError(
            f"Unknown profile {shown(profile)}; available: {', '.join(PROFILES)}", parameter="Profile"
        )
    return profile


class ProfileEngines:
    """The service's engine per profile. Thread-safe; each engine is loaded at most once.

    ``default`` is the engine the service was opened with; ``settings`` are the settings the
    other profiles' engines are loaded with (default: the default engine's, with
    ``flip_augment`` as configured: the accurate engine turns it off for itself only).
    ``engines`` adds engines built elsewhere (tests, a caller that loaded one already), by profile.
    """

    def __init__(
        self,
        default: FaceEngine,
        settings: Settings | None = None,
        engines: dict[str, FaceEngine] | None = None,
    ) -> None:
        self.default = default
        self.default_profile = profile_of(default.model_id)
        if settings is None:
            settings = default.settings
            if self.default_profile == "accurate":
                settings = settings.replace(flip_augment=Settings.flip_augment)
        self._settings = settings
        self._loaded: dict[str, FaceEngine] = {self.default_profile: default, **(engines or {})}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> tuple[str, ...]:
        """The profiles whose engines are loaded so far (the service's own first)."""
        with self._lock:
            return tuple(self._loaded)

    def get(self, profile: str) -> FaceEngine:
        """The engine of ``profile``, loaded now if no collection has needed it yet.

        Another profile's engine is loaded without the file settings (``calibration_file``,
        ``cohort_file``, ``normaliser_file``) made for the service's own profile: it scores with its
        own shipped table and normaliser. A profile whose models are not installed, or whose engine
        refuses a file setting, is ``InvalidParameterError`` naming what to install or which file.
        """
        check_profile(profile)
        with self._lock:
            found = self._loaded.get(profile)
            if found is None:
                from facetrust.engine import load_engine

                try:
                    found = load_engine(self._settings.replace(profile=profile, **self._files_for(profile)))
                except (ConfigurationError, InvalidParameterError) as exc:  # a file setting made for another model
                    raise InvalidParameterError(
                        f"Profile {profile!r} is not available on this server: {exc.message}", parameter="Profile"
                    ) from exc
                self._loaded[profile] = found
            return found

    def _files_for(self, profile: str) -> dict[str, None]:
        """The file settings (``calibration_file``, ``cohort_file``, ``normaliser_file``) that hold
        nothing made for ``profile``'s model: ``profile``'s engine loads without them (its shipped
        table and normaliser) instead of being refused.

        A file (or, for ``normaliser_file``, a folder with a file) made for ``profile``'s model
        stays, and so does one that cannot be read (its engine then names it).
        """
        if profile == self.default_profile:
            return {}
        from facetrust.calibration import Calibration
        from facetrust.clusternorm import normaliser_files
        from facetrust.errors import FacetrustError
        from facetrust.normalise import CohortNormaliser

        loaders: dict[str, Callable[[Path], list[str]]] = {
            "calibration_file": lambda path: [Calibration.load(path).model],
            "cohort_file": lambda path: [CohortNormaliser.load(path).model],
            "normaliser_file": lambda path: list(normaliser_files(path)),
        }
        dropped: dict[str, None] = {}
        for name, models_at in loaders.items():
            path = getattr(self._settings, name)
            if path is None:
                continue
            try:
                models = models_at(path)
            except (FacetrustError, OSError, ValueError):
                continue
            if all(profile_of(model) != profile for model in models):
                log.info("the %s profile scores without %s=%s (made for %s)", profile, name, path, ", ".join(models))
                dropped[name] = None
        return dropped

    def dim_of(self, row: CollectionRow) -> int:
        """The length of the collection's templates, without loading an engine: erasure and deletion
        work on a collection whose profile this server cannot run."""
        with self._lock:
            for engine in self._loaded.values():
                if engine.model_id == row.model:
                    return engine.recogniser.dim
        return FUSED_DIM if profile_of(row.model) == "accurate" else self.default.recogniser.dim

    def for_model(self, collection: str, model: str) -> FaceEngine:
        """The engine that embeds with ``model`` (a collection's), or ``ModelMismatchError`` naming both."""
        with self._lock:
            for engine in self._loaded.values():
                if engine.model_id == model:
                    return engine
        profile = profile_of(model)
        try:
            engine = self.get(profile)
        except InvalidParameterError as exc:
            raise ModelMismatchError(
                f"Collection {collection!r} holds embeddings of the {profile!r} profile (model {model!r}), which this "
                f"server cannot run: {exc.message}",
                resource=collection,
                collection_model=model,
                engine_model=self.default.model_id,
            ) from exc
        if engine.model_id != model:
            raise ModelMismatchError(
                f"Collection {collection!r} holds embeddings of model {model!r}; this service's {profile!r} profile "
                f"embeds with {engine.model_id!r}. Use a collection made with this model, or re-index into a new one.",
                resource=collection,
                collection_model=model,
                engine_model=engine.model_id,
            )
        return engine
