"""CLI plumbing: per-invocation state (settings overrides, the lazily built engine and service) and error rendering."""

from __future__ import annotations

import functools
import os
import pwd
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

import click

from facetrust.config import Settings
from facetrust.errors import FacetrustError
from facetrust.governance.actor import Actor, check_case_ref

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.engine import FaceEngine
    from facetrust.service import FaceService

__all__ = [
    "CliState",
    "FloatRange",
    "PathType",
    "all_pages",
    "check_output_file",
    "cli_state",
    "init_state",
    "os_user",
    "renders_errors",
    "report_error",
    "similarity_option",
]

P = ParamSpec("P")
R = TypeVar("R")


class _Page(Protocol):
    @property
    def next_token(self) -> str | None: ...


PageT = TypeVar("PageT", bound=_Page)


def all_pages(fetch: Callable[[str | None], PageT]) -> list[PageT]:
    """Every page of a listing: ``fetch(token)`` from no token until a page has no next one.

    Callers ask for the largest page size the listing allows: each call is one audit entry.
    """
    pages = [fetch(None)]
    while pages[-1].next_token is not None:
        pages.append(fetch(pages[-1].next_token))
    return pages


_STATE_KEY = "facetrust.cli.state"


@dataclass
class CliState:
    """What the group's options decided, shared by every command of one invocation.

    ``obj`` is click's context object (a dict). When it holds ``"engine"`` (tests inject a
    ``FaceEngine`` there), that engine is used as is and the settings overrides do not apply
    to it; otherwise the default engine is built on first use from ``Settings.load(overrides)``
    and kept there. Likewise ``"service"``: an injected ``FaceService`` is used as is (and
    left open); otherwise one is opened on first use over the settings' data directory and
    closed when the command's context closes.
    """

    obj: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)
    debug: bool = False
    case_ref: str | None = None
    _settings: Settings | None = None
    _service: FaceService | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.load(self.overrides)
        return self._settings

    def actor(self) -> Actor:
        """Who runs this command, for the audit log: the OS user (``local:<user>``, role admin: the
        data directory is theirs) and the ``--case-ref`` given."""
        return Actor(key_id=f"local:{os_user()}", role="admin", case_ref=check_case_ref(self.case_ref))

    def engine(self) -> FaceEngine:
        from facetrust.engine import FaceEngine, load_engine

        found = self.obj.get("engine")
        if found is None:
            found = self.obj["engine"] = load_engine(self.settings())
        if not isinstance(found, FaceEngine):
            raise TypeError(f"ctx.obj['engine'] must be a FaceEngine, not {type(found).__name__}")
        return found

    def service(self) -> FaceService:
        from facetrust.service import FaceService

        found = self.obj.get("service")
        if found is not None:
            if not isinstance(found, FaceService):
                raise TypeError(f"ctx.obj['service'] must be a FaceService, not {type(found).__name__}")
            return found
        if self._service is None:
            self._service = FaceService.open(settings=self.settings(), engine=self.engine())
            click.get_current_context().call_on_close(self._close_service)
        return self._service

    def _close_service(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            service.close()


def os_user() -> str:
    """The login name of the user running the CLI (the uid when the system has no name for it).

    Read from the system's user database by the process's user id, never from LOGNAME/USER:
    those are the caller's to set, so ``USER=bob facetrust review record`` recorded the review as
    bob's and let the one who ran the search confirm it."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no passwd entry for this uid (a container's arbitrary uid)
        return f"uid{os.getuid()}"


def cli_state(ctx: click.Context | None = None) -> CliState:
    """The state the group callback stored; a default one when a command runs on its own."""
    ctx = ctx or click.get_current_context()
    state = ctx.meta.get(_STATE_KEY)
    if not isinstance(state, CliState):
        state = ctx.meta[_STATE_KEY] = CliState(obj=ctx.ensure_object(dict))
    return state


def init_state(ctx: click.Context, *, overrides: dict[str, Any], debug: bool, case_ref: str | None = None) -> CliState:
    state = CliState(obj=ctx.ensure_object(dict), overrides=overrides, debug=debug, case_ref=case_ref)
    ctx.meta[_STATE_KEY] = state
    return state


class FloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses NaN (which compares false with both bounds)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


class PathType(click.Path):
    """``click.Path`` that refuses an empty value, which ``pathlib`` reads as the current directory
    (``--data ''`` made the working directory a data directory, ``--receipt-out ''`` was found
    unwritable only after the erasure)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (str, bytes)) and not value:
            self.fail("the path is empty.", param, ctx)
        return super().convert(value, param, ctx)


def similarity_option(default: float | None, help: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``--threshold``: a Similarity from 0 to 100 (NaN refused), ``default`` shown in --help."""
    return click.option(
        "--threshold", type=FloatRange(0.0, 100.0), default=default, show_default=default is not None, help=help
    )


def check_output_file(path: Path, option: str) -> None:
    """Refuse an output file whose folder is missing or cannot be written, as a usage error naming
    ``option``: checked before a command spends minutes on work it could not save."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise click.BadParameter(f"the folder {folder} does not exist", param_hint=option)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.BadParameter(f"the folder {folder} cannot be written", param_hint=option)


def report_error(exc: FacetrustError) -> None:
    """Print ``Error: <message>`` on stderr (after the traceback under ``--debug``); don't exit."""
    if cli_state().debug:
        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
    click.echo(f"Error: {exc.message}", err=True)


def renders_errors(exit_code: int = 1) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn a ``FacetrustError`` escaping a command into ``Error: <message>`` and ``exit_code``.

    Commands report their own failures by raising ``FacetrustError`` subclasses too. Under
    ``--debug`` the traceback is printed first; the exit code stays the same so scripts see
    the same contract either way.
    """

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return command(*args, **kwargs)
            except FacetrustError as exc:
                report_error(exc)
                click.get_current_context().exit(exit_code)

        return wrapper

    return decorate
