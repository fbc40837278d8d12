"""Templates protected at rest: embeddings sealed with AES-256-GCM before they reach the disk.

The key comes from a file or the ``FACETRUST_TEMPLATE_KEY`` environment variable (base64 of
32 bytes), or by default from ``template.key`` in the per-user config directory, generated on
first use; it is refused if it sits inside the data directory (a stolen data directory alone
yields no templates) or if its file is readable by others. Each sealed blob names the key
that sealed it (the first 8 bytes of the key's SHA-256), so a ``Keyring`` holding the new
key and the old ones can read every blob while ``facetrust templates rotate`` re-seals them
in small batches: reads never stop. The face id is bound in as associated data, so a blob
moved onto another face fails to open.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from pathlib import Path

from facetrust.errors import ConfigurationError
from facetrust.files import read_regular
from facetrust.store.sealing import MAGIC, Keyring, TemplateKey, is_sealed

__all__ = [
    "MAGIC",
    "SERVER_KEY_NAME",
    "TEMPLATE_KEY_NAME",
    "Keyring",
    "TemplateKey",
    "default_key_file",
    "default_keyring",
    "ensure_key_file",
    "generate_key",
    "is_sealed",
    "load_keyring",
    "load_server_key",
]

logger = logging.getLogger(__name__)

TEMPLATE_KEY_NAME = "template.key"
SERVER_KEY_NAME = "server.key"


def generate_key() -> str:
    """A new random key, base64-encoded, for a key file or the environment."""
    return base64.b64encode(os.urandom(32)).decode()


def _decode(text: str, where: str, what: str = "Template key", setting: str = "template_key") -> TemplateKey:
    try:
        return TemplateKey.from_bytes(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError, ConfigurationError):  # not base64, or not 32 bytes (an empty file)
        raise ConfigurationError(f"{what} in {where} is not base64 of 32 bytes", setting=setting) from None


def _resolved(path: Path, what: str, setting: str) -> Path:
    """``path`` made absolute with its links followed; a symlink loop is a configuration error naming it."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError) as exc:  # a loop: RuntimeError before Python 3.13, OSError since
        raise ConfigurationError(f"{what} {path} cannot be resolved: {exc}", setting=setting) from None


def load_keyring(*, key_file: Path | None, env_value: str | None, data_dir: Path) -> Keyring | None:
    """The configured keys, or None when templates are not encrypted.

    The key file (or ``FACETRUST_TEMPLATE_KEY``) holds one base64 key per line (comma-separated in
    the variable): the first seals, all of them open. To rotate, put the new key first, keep the
    old ones below it, run ``facetrust templates rotate``, then drop the old lines.
    """
    if key_file is not None:
        resolved = _resolved(key_file, "Template key file", "template_key_file")
        if resolved.is_relative_to(_resolved(data_dir, "Data directory", "data_dir")):
            raise ConfigurationError(
                f"Template key file {key_file} is inside the data directory {data_dir}; keep it elsewhere, "
                "or a stolen data directory would carry its own key",
                setting="template_key_file",
            )
        try:
            _check_private(resolved, key_file)
            lines = read_regular(resolved).decode("utf-8").split()
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot read template key file {key_file}: {exc.strerror}", setting="template_key_file"
            ) from None
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"Template key file {key_file} is not text: it holds base64 keys, one a line",
                setting="template_key_file",
            ) from None
        return _keyring(lines, str(key_file))
    if env_value:
        return _keyring(env_value.split(","), "FACETRUST_TEMPLATE_KEY")
    return None


TEMPLATE_KEY_INSTEAD = (
    "set template_key_file (FACETRUST_TEMPLATE_KEY_FILE) to a file in a writable folder, give the key in "
    "FACETRUST_TEMPLATE_KEY, or point XDG_CONFIG_HOME at a writable folder"
)
SERVER_KEY_INSTEAD = "point XDG_CONFIG_HOME at a writable folder, where server.key is kept"


def default_key_file(name: str = TEMPLATE_KEY_NAME) -> Path:
    """``name`` in the per-user config directory (platformdirs): where default keys are kept."""
    from facetrust.config import default_config_dir

    return default_config_dir() / name


def ensure_key_file(
    path: Path,
    *,
    what: str = "template key file",
    instead: str = TEMPLATE_KEY_INSTEAD,
    setting: str = "template_key_file",
) -> bool:
    """Create ``path`` holding a new random key (directory 0700, file 0600) unless it exists.

    Returns True when it was created. Two processes racing both end up reading the same key. A
    folder that cannot be made or written (a service account whose home does not exist) is a
    ``ConfigurationError`` naming the file and ``instead``, what to set.
    """
    from facetrust.store.private import private_dir

    path = Path(path)

    def refused(exc: OSError) -> ConfigurationError:
        return ConfigurationError(f"Cannot create the {what} {path}: {exc.strerror or exc}; {instead}", setting=setting)

    try:
        private_dir(path.parent)
    except OSError as exc:  # its folder, or a parent, is a file or cannot be made
        raise refused(exc) from None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise refused(exc) from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (generate_key() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    logger.info("Created key file %s", path)
    return True


def default_keyring(data_dir: Path, key_file: Path | None = None) -> Keyring:
    """The template keyring used when none is configured: the key in the per-user config
    directory (``template.key``), generated on first use. Plain templates of an older store
    stay readable until ``facetrust templates rotate`` seals them."""
    path = key_file or default_key_file()
    ensure_key_file(path)
    ring = load_keyring(key_file=path, env_value=None, data_dir=data_dir)
    if ring is None:  # pragma: no cover - a key file was given, so a keyring or an error comes back
        raise ConfigurationError(f"No template key in {path}", setting="template_key_file")
    return Keyring(ring.current, ring.older, plain_ok=True)


def load_server_key(data_dir: Path, key_file: Path | None = None) -> TemplateKey:
    """The key that seals access-key secrets in ``keys.db``: ``server.key`` in the per-user config
    directory (made on first use), or ``key_file``; refused inside the data directory or when
    others can read it, like a template key file."""
    path = Path(key_file or default_key_file(SERVER_KEY_NAME))
    ensure_key_file(path, what="server key file", instead=SERVER_KEY_INSTEAD, setting="data_dir")
    resolved = _resolved(path, "Server key file", "data_dir")
    if resolved.is_relative_to(_resolved(data_dir, "Data directory", "data_dir")):
        raise ConfigurationError(
            f"Server key file {path} is inside the data directory {data_dir}; keep it elsewhere", setting="data_dir"
        )
    try:
        _check_private(resolved, path, "Server key file", "data_dir")
        text = read_regular(resolved).decode("utf-8")
    except OSError as exc:
        raise ConfigurationError(f"Cannot read server key file {path}: {exc.strerror}", setting="data_dir") from None
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"Server key file {path} is not text: it holds one base64 key", setting="data_dir"
        ) from None
    return _decode(text, str(path), "Server key", "data_dir")


def _check_private(
    resolved: Path, key_file: Path, what: str = "Template key file", setting: str = "template_key_file"
) -> None:
    """Refuse a key file that is not a file, or that the group or other users can read or change."""
    found = resolved.stat()
    if not stat.S_ISREG(found.st_mode):
        raise ConfigurationError(f"{what} {key_file} is not a file: it holds base64 keys", setting=setting)
    mode = stat.S_IMODE(found.st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            f"{what} {key_file} has mode {mode:o}: other users can read or change it; run `chmod 600 {key_file}`",
            setting=setting,
        )


def _keyring(texts: list[str], where: str) -> Keyring:
    keys = [_decode(t, where) for t in texts if t.strip()]
    if not keys:
        raise ConfigurationError(f"{where} holds no template key", setting="template_key")
    return Keyring(keys[0], tuple(keys[1:]))
