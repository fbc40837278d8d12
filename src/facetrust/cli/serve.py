"""``facetrust serve``: the Rekognition-compatible HTTP server (uvicorn) over one data directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from facetrust.cli.context import PathType, cli_state, renders_errors
from facetrust.server.loopback import is_loopback

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.governance.actor import Actor
    from facetrust.server.keys import KeyStore
    from facetrust.service import FaceService

__all__ = ["boto3_snippet", "is_loopback", "serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--data",
    "data_dir",
    type=PathType(file_okay=False, path_type=Path),
    help="The data directory of collections and keys (default: the global --data, else the per-user one).",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Accept unsigned requests, all as the admin role. Refused unless --host is a loopback address.",
)
@click.option(
    "--bootstrap",
    is_flag=True,
    help="When the data directory has no active key, create an admin key and print it once, with a boto3 snippet.",
)
@click.option(
    "--no-encryption",
    is_flag=True,
    help="Store new templates in the clear instead of sealing them with the default per-user template key.",
)
@click.option(
    "--video-root",
    type=PathType(file_okay=False, exists=True, path_type=Path),
    help="The folder the video operations read: S3Object Bucket = a folder under it (the video_root setting).",
)
@renders_errors()
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    no_auth: bool,
    bootstrap: bool,
    no_encryption: bool,
    video_root: Path | None,
) -> None:
    """Serve Amazon Rekognition's JSON protocol for boto3 clients (endpoint_url=http://HOST:PORT).

    Every request must be signed (SigV4) with a key from `facetrust keys create`, unless
    --no-auth is given on a loopback address. Stop with Ctrl-C.
    """
    if no_auth and not is_loopback(host):
        raise click.UsageError(
            f"--no-auth is refused on --host {host}: an unauthenticated server may only listen on a loopback "
            "address (127.0.0.1, ::1, localhost). Create a key with `facetrust keys create --role admin` instead."
        )
    import uvicorn

    from facetrust.budget import tune_malloc
    from facetrust.server import create_app
    from facetrust.server.app import UI_PATH
    from facetrust.server.auth import SigV4Authenticator
    from facetrust.server.http11 import SERVER_OPTIONS
    from facetrust.server.keys import KeyStore

    tune_malloc()  # image buffers go back to the OS when freed, not into per-thread arenas
    state = cli_state()
    if data_dir is not None:
        state.overrides["data_dir"] = data_dir
    if no_encryption:
        state.overrides["template_encryption"] = False
    if video_root is not None:
        state.overrides["video_root"] = video_root
    # facetrust's log lines from here to the command's end: the store's upgrade, the key store's, the server's
    click.get_current_context().with_resource(_server_log())
    settings = state.settings()
    service = state.service()  # closed when the command's context closes, after the server stops
    keys = None if no_auth else KeyStore.open(settings.resolved_data_dir, store=settings.store)
    try:
        if keys is not None:  # a video job runs only while the key that started it is active
            service.key_role = keys.role_of
        if settings.video_root is not None:  # resume the video jobs a stopped server left unfinished
            from facetrust.service.video_jobs import jobs_of

            jobs_of(service)
        authenticator = None if keys is None else SigV4Authenticator(keys, store=service.store)
        if bootstrap:
            click.echo(_bootstrap(keys, f"http://{_url_host(host)}:{port}", service, state.actor()))
        app = create_app(service, authenticator=authenticator, settings=settings)
        address = f"http://{_url_host(host)}:{port}"
        click.echo(
            f"facetrust: serving {service.data_dir} at {address} "
            f"(authentication {'OFF' if keys is None else 'on'}); web page {address}{UI_PATH}; Ctrl-C stops",
            err=True,
        )
        # lifespan on: the app's lifespan runs the hourly retention sweep (server/app.py)
        # the h11 protocol with a request-head deadline and JSON framing errors (server/http11.py)
        try:
            uvicorn.run(app, host=host, port=port, log_level="info", lifespan="on", **SERVER_OPTIONS)
        except SystemExit as exc:  # uvicorn exits 3 when it cannot start (it logged why)
            if exc.code in (None, 0):
                raise
            _check_listen(host, port)  # a port in use or a host that does not resolve: say so
            raise click.ClickException(f"the server could not start on {address} (the log above says why)") from None
    finally:
        if settings.video_root is not None:  # no job may start after the key store it checks has closed
            from facetrust.service.video_jobs import jobs_of

            jobs_of(service).close()
        if keys is not None:
            keys.close()


@contextmanager
def _server_log() -> Iterator[None]:
    """facetrust's own log lines on stderr while serving, beside uvicorn's, from INFO up: a refused
    key with its id, a refused request with its request id, a failure with its traceback. Without
    a handler Python showed only WARNING and above, as bare messages."""
    import logging
    import sys

    logger = logging.getLogger("facetrust")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    if level == logging.NOTSET or level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _check_listen(host: str, port: int) -> None:
    """``Error: …`` (exit 1) for a host that does not resolve or an address already in use."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def boto3_snippet(endpoint: str, key_id: str, secret: str) -> str:
    """Five lines of Python that call this server with an unmodified boto3 client."""
    return (
        "import boto3\n"
        f'rek = boto3.client("rekognition", endpoint_url="{endpoint}", region_name="us-east-1",\n'
        f'                   aws_access_key_id="{key_id}", aws_secret_access_key="{secret}")\n'
        'rek.create_collection(CollectionId="demo")\n'
        'print(rek.detect_faces(Image={"Bytes": open("face.jpg", "rb").read()})["FaceDetails"])'
    )


def _bootstrap(keys: KeyStore | None, endpoint: str, service: FaceService, actor: Actor) -> str:
    """The text --bootstrap prints: a new admin key when there is no active one (its creation in the
    audit log, as `facetrust keys create` records one), and how to use it."""
    lines = [f"Endpoint: {endpoint}"]
    if keys is None:
        lines += ["Authentication is off: any key id and secret will do.", "", boto3_snippet(endpoint, "x", "y")]
    elif any(record.active for record in keys.list()):
        lines += [
            "Using the existing keys (`facetrust keys list`); a secret is shown only when its key is created.",
            "",
            boto3_snippet(endpoint, "<key id>", "<secret>"),
        ]
    else:
        from facetrust.service.governed import attempt

        with attempt(service.store, actor, "CreateKey") as rec:
            rec.details = {"key_role": "admin", "bootstrap": True}
            key_id, secret = keys.create("admin", "created by facetrust serve --bootstrap")
            rec.details["created_key_id"] = key_id
        lines += [
            f"Created an admin key: {key_id}",
            f"Secret: {secret}",
            "The secret is shown only this once and cannot be recovered; store it now.",
            "",
            boto3_snippet(endpoint, key_id, secret),
        ]
    return "\n".join(lines)
