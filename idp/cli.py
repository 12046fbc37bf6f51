"""The ``idp`` command: database, users, clients, keys, audit, demo data and serving."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from typing import BinaryIO

import click

from idp.deps import Deps
from idp.deps import build_deps
from idp.errors import IdpError
from idp.settings import Settings
from idp.settings import SettingsError


def _deps() -> Deps:
    try:
        return build_deps(Settings())
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def _announce(deps: Deps, topic: str, message: bytes = b"") -> None:
    """Tell running instances to drop what they cached (clients, keys)."""
    deps.store.publish(deps.keys.channel(topic), message)


@click.group()
def main() -> None:
    """Soft Token IdP administration."""


# --- database -----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration and make sure signing keys exist."""
    from idp.oidc.keys import ensure_keys
    from idp.store.migrate import upgrade

    deps = _deps()
    upgrade(deps.engine)
    with deps.sessions.begin() as db:
        created = ensure_keys(db, deps.cipher, now=deps.clock.now())
    click.echo(f"database at head; {len(created)} signing key(s) created")


# --- users --------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Accounts."""


@users.command("create")
@click.argument("username")
@click.option("--password", help="Defaults to a generated temporary password, shown once.")
@click.option("--permanent", is_flag=True, help="The password need not be changed at login.")
@click.option("--citizen-id", help="13-digit Thai citizen ID (stored encrypted).")
@click.option("--given-name-th", default="")
@click.option("--family-name-th", default="")
@click.option("--given-name-en", default="")
@click.option("--family-name-en", default="")
@click.option("--email")
def users_create(
    username: str,
    password: str | None,
    permanent: bool,
    citizen_id: str | None,
    given_name_th: str,
    family_name_th: str,
    given_name_en: str,
    family_name_en: str,
    email: str | None,
) -> None:
    """Issue an account. A temporary password must be changed at first login."""
    deps = _deps()
    generated = password is None
    password = password or _temporary_password()
    try:
        with deps.sessions.begin() as db:
            user = deps.accounts.create_user(
                db,
                username=username,
                password=password,
                now=deps.clock.now(),
                temporary=not permanent,
                citizen_id=citizen_id,
                given_name_th=given_name_th,
                family_name_th=family_name_th,
                given_name_en=given_name_en,
                family_name_en=family_name_en,
                email=email,
                actor="cli",
            )
    except IdpError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"created {user.username} (sub {user.sub})")
    if generated:
        click.echo(f"temporary password (shown once): {password}")


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """Clear the failed-login counter of a locked-out account."""
    from idp.audit.service import record

    deps = _deps()
    with deps.sessions.begin() as db:
        deps.accounts.reset_login_failures(db, username)
        record(db, "account.unlocked", now=deps.clock.now(), actor="cli", user=username)
    click.echo(f"unlocked {username}")


def _temporary_password() -> str:
    from idp.accounts.issuance import temporary_password

    return temporary_password()


@users.command("issue")
@click.option("--citizen-id", required=True, help="13-digit Thai citizen ID.")
@click.option("--given-name-th", required=True)
@click.option("--family-name-th", required=True)
@click.option("--unit", "unit_code", required=True, help="10-digit disbursement unit code.")
@click.option("--given-name-en", default="")
@click.option("--family-name-en", default="")
@click.option("--email")
@click.option("--legacy-token-key", is_flag=True, help="Held a GFMS Token Key before.")
@click.option("--username", help="Defaults to one made from the English names.")
def users_issue(
    citizen_id: str,
    given_name_th: str,
    family_name_th: str,
    unit_code: str,
    given_name_en: str,
    family_name_en: str,
    email: str | None,
    legacy_token_key: bool,
    username: str | None,
) -> None:
    """Issue an account in a unit: a username and a temporary password, shown once."""
    from idp.accounts.issuance import NewAccount
    from idp.audit.service import NO_CONTEXT
    from idp.roles.authority import SYSTEM

    deps = _deps()
    account = NewAccount(
        citizen_id=citizen_id,
        given_name_th=given_name_th,
        family_name_th=family_name_th,
        unit_code=unit_code,
        given_name_en=given_name_en,
        family_name_en=family_name_en,
        email=email,
        legacy_token_key=legacy_token_key,
        username=username,
    )
    try:
        with deps.sessions.begin() as db:
            issued = deps.issuance.issue_account(
                db, SYSTEM, account, now=deps.clock.now(), actor="cli", audit=NO_CONTEXT
            )
    except IdpError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"issued {issued.username}")
    click.echo(f"temporary password (shown once): {issued.temporary_password}")


@users.command("import")
@click.argument("csv_file", type=click.File("rb"))
def users_import(csv_file: BinaryIO) -> None:
    """Issue accounts from a CSV file (columns: citizen_id, given_name_th, family_name_th,
    given_name_en, family_name_en, unit_code, and optionally email, legacy_token_key, username);
    prints a report per row, with each temporary password shown once."""
    from idp.audit.service import NO_CONTEXT
    from idp.roles.authority import SYSTEM

    deps = _deps()
    try:
        with deps.sessions.begin() as db:
            reports = deps.issuance.import_accounts(
                db, SYSTEM, csv_file.read(), now=deps.clock.now(), actor="cli", audit=NO_CONTEXT
            )
    except IdpError as exc:
        raise click.ClickException(exc.message) from exc
    for report in reports:
        if report.issued:
            click.echo(
                f"row {report.row}: issued {report.issued.username} "
                f"temporary password {report.issued.temporary_password}"
            )
        else:
            click.echo(f"row {report.row}: not issued: {report.message}")
    issued = sum(1 for r in reports if r.issued)
    click.echo(f"{issued} of {len(reports)} accounts issued")


# --- units and administrative roles -------------------------------------------------------


@main.group()
def units() -> None:
    """Disbursement units."""


@units.command("add")
@click.argument("code")
@click.option("--name-th", required=True)
@click.option("--name-en", default="")
@click.option("--province", required=True)
@click.option("--treasury-office", required=True)
def units_add(code: str, name_th: str, name_en: str, province: str, treasury_office: str) -> None:
    """Add a disbursement unit (10-digit code) and the treasury office responsible for it."""
    from idp.audit.service import NO_CONTEXT
    from idp.roles.authority import SYSTEM
    from idp.roles.units import create_unit

    deps = _deps()
    try:
        with deps.sessions.begin() as db:
            unit = create_unit(
                db,
                SYSTEM,
                code=code,
                name_th=name_th,
                name_en=name_en,
                province=province,
                treasury_office=treasury_office,
                now=deps.clock.now(),
                actor="cli",
                audit=NO_CONTEXT,
            )
            click.echo(f"added unit {unit.code} ({unit.province})")
    except IdpError as exc:
        raise click.ClickException(exc.message) from exc


@main.group()
def admins() -> None:
    """Administrative roles inside the IdP."""


@admins.command("grant")
@click.argument("username")
@click.argument(
    "role",
    type=click.Choice(["cgd-admin", "treasury-admin", "head-of-unit", "helpdesk", "auditor"]),
)
@click.option("--province", help="For a treasury administrator, or an auditor of one province.")
@click.option("--unit", "unit_code", help="For a head of unit, or an auditor of one unit.")
def admins_grant(username: str, role: str, province: str | None, unit_code: str | None) -> None:
    """Grant an administrative role."""
    from idp.accounts.service import get_user_by_username
    from idp.audit.service import NO_CONTEXT
    from idp.roles.authority import SYSTEM
    from idp.roles.authority import grant_admin_role
    from idp.roles.models import AdminRole

    deps = _deps()
    try:
        with deps.sessions.begin() as db:
            user = get_user_by_username(db, username)
            if user is None:
                raise click.ClickException(f"no user {username}")
            grant_admin_role(
                db,
                SYSTEM,
                user,
                AdminRole(role),
                now=deps.clock.now(),
                actor="cli",
                audit=NO_CONTEXT,
                province=province,
                unit_code=unit_code,
            )
    except IdpError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"granted {role} to {username}")


# --- clients ------------------------------------------------------------------------------


@main.group()
def clients() -> None:
    """OAuth clients (relying parties)."""


@clients.command("add")
@click.argument("client_id")
@click.option("--name", required=True)
@click.option("--public", is_flag=True, help="No secret; PKCE only (browser or native apps).")
@click.option("--secret", help="Defaults to a generated 256-bit secret, shown once.")
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True)
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    default=("authorization_code", "refresh_token"),
    show_default=True,
)
@click.option("--scope", default="openid profile email", show_default=True)
@click.option("--auth-method", "auth_methods", multiple=True, default=("client_secret_basic",))
@click.option("--id-token-alg", type=click.Choice(["ES256", "RS256"]))
@click.option("--may-introspect", is_flag=True, help="May introspect any client's tokens.")
@click.option("--backchannel-logout-uri")
@click.option("--security-event-uri", help="Push CAEP security events here (RFC 8935).")
@click.option(
    "--profile",
    type=click.Choice(["fapi2"]),
    help="fapi2: pushed requests, private_key_jwt, DPoP-bound tokens (FAPI 2.0 Security Profile).",
)
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, dir_okay=False),
    help="File with the client's public JWK Set (private_key_jwt, request objects).",
)
@click.option("--jwks-uri", help="Where the client publishes its public JWK Set.")
@click.option("--require-par", is_flag=True, help="Only pushed authorization requests.")
@click.option("--require-signed-request-object", is_flag=True, help="Only signed requests.")
@click.option(
    "--dpop-bound-access-tokens",
    is_flag=True,
    help="Every token request must carry a DPoP proof (RFC 9449 5.2).",
)
@click.option(
    "--backchannel-token-delivery-mode",
    type=click.Choice(["poll", "ping"]),
    help="CIBA: how the client learns of the answer (with --grant-type "
    "urn:openid:params:grant-type:ciba).",
)
@click.option(
    "--backchannel-client-notification-endpoint",
    help="CIBA ping mode: where the client is told its request has an answer.",
)
def clients_add(
    client_id: str,
    name: str,
    public: bool,
    secret: str | None,
    redirect_uris: tuple[str, ...],
    post_logout_uris: tuple[str, ...],
    grant_types: tuple[str, ...],
    scope: str,
    auth_methods: tuple[str, ...],
    id_token_alg: str | None,
    may_introspect: bool,
    backchannel_logout_uri: str | None,
    security_event_uri: str | None,
    profile: str | None,
    jwks_file: str | None,
    jwks_uri: str | None,
    require_par: bool,
    require_signed_request_object: bool,
    dpop_bound_access_tokens: bool,
    backchannel_token_delivery_mode: str | None,
    backchannel_client_notification_endpoint: str | None,
) -> None:
    """Register (or replace) a client."""
    import json

    from idp.oidc.clients import KEY_METHODS
    from idp.oidc.clients import NewClient
    from idp.oidc.clients import apply_profile
    from idp.oidc.clients import generate_client_secret

    deps = _deps()
    try:
        jwks = json.loads(Path(jwks_file).read_text()) if jwks_file else None
    except ValueError as exc:
        raise click.ClickException("--jwks: the file is not JSON.") from exc
    metadata: dict[str, Any] = {
        "auth_methods": list(auth_methods),
        "require_pushed_authorization_requests": require_par,
        "require_signed_request_object": require_signed_request_object,
        "dpop_bound_access_tokens": dpop_bound_access_tokens,
        "id_token_signed_response_alg": id_token_alg,
    }
    if profile:
        metadata = apply_profile(profile, metadata)
    # A client proving itself with its key alone has no secret to generate.
    keys_only = set(metadata["auth_methods"]) <= set(KEY_METHODS)
    generated = not public and not keys_only and secret is None
    if not public and not keys_only:
        secret = secret or generate_client_secret()
    new = NewClient(
        client_id=client_id,
        client_name=name,
        secret=None if public else secret,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_uris),
        grant_types=list(grant_types),
        scope=scope,
        backchannel_logout_uri=backchannel_logout_uri,
        security_event_uri=security_event_uri,
        may_introspect=may_introspect,
        jwks=jwks,
        jwks_uri=jwks_uri,
        backchannel_token_delivery_mode=backchannel_token_delivery_mode,
        backchannel_client_notification_endpoint=backchannel_client_notification_endpoint,
        **metadata,
    )
    try:
        with deps.sessions.begin() as db:
            deps.registrations.register(db, new, now=deps.clock.now(), actor="cli")
    except IdpError as exc:
        raise click.ClickException(exc.message) from exc
    _announce(deps, "clients", client_id.encode())
    click.echo(f"registered {client_id}")
    if generated:
        click.echo(f"client secret (shown once): {secret}")


# --- keys ---------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Signing keys."""


@keys.command("rotate")
@click.option("--alg", type=click.Choice(["ES256", "RS256"]), multiple=True)
@click.option("--force", is_flag=True, help="Even if the next key was published only just now.")
def keys_rotate(alg: tuple[str, ...], force: bool) -> None:
    """Promote the published next key to signing; keep the old one published for the overlap."""
    from idp.audit.service import record
    from idp.oidc.keys import SUPPORTED_ALGS
    from idp.oidc.keys import rotate_keys

    deps = _deps()
    now = deps.clock.now()
    try:
        with deps.sessions.begin() as db:
            kids = rotate_keys(
                db,
                deps.cipher,
                now=now,
                overlap=deps.settings.key_overlap,
                algs=alg or SUPPORTED_ALGS,
                force=force,
            )
            record(db, "keys.rotated", now=now, actor="cli", signing=kids)
    except IdpError as exc:
        raise click.ClickException(exc.message) from exc
    _announce(deps, "keys")
    click.echo("now signing with: " + ", ".join(kids))


@keys.command("retire")
@click.argument("kid")
def keys_retire(kid: str) -> None:
    """Withdraw a key at once (a leak): tokens it signed stop verifying everywhere."""
    from idp.audit.service import record
    from idp.oidc.keys import retire_key

    deps = _deps()
    try:
        with deps.sessions.begin() as db:
            retire_key(db, deps.cipher, kid, now=deps.clock.now())
            record(db, "keys.retired", now=deps.clock.now(), actor="cli", kid=kid)
    except IdpError as exc:
        raise click.ClickException(exc.message) from exc
    _announce(deps, "keys")
    click.echo(f"retired {kid}")


# --- audit --------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The hash-chained audit trail."""


@audit.command("verify")
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    metavar="SEQ:HASH",
    help="A head recorded elsewhere (the idp.audit.sealed log lines); must be on the chain.",
)
def audit_verify(anchors: tuple[str, ...]) -> None:
    """Check every link of the sealed chain; exit 1 at the first broken one."""
    from idp.audit.service import verify_chain

    try:
        expected = {int(seq): digest for seq, _, digest in (a.partition(":") for a in anchors)}
    except ValueError as exc:
        raise click.BadParameter("anchors look like 1234:<64 hex digits>") from exc
    deps = _deps()
    with deps.sessions() as db:
        report = verify_chain(db, anchors=expected)
    if report.is_intact:
        click.echo(f"intact: {report.checked} sealed events, {report.unsealed} not yet sealed")
        click.echo(f"head: {report.head_seq}:{report.head_hash}")
        return
    click.echo(
        f"BROKEN at seq {report.broken_at_seq}: {report.reason} "
        f"({report.checked} events verified before it)",
        err=True,
    )
    sys.exit(1)


@audit.command("seal")
def audit_seal() -> None:
    """Seal committed events now (running IdPs do this every second)."""
    from idp.audit.service import seal_pending

    deps = _deps()
    with deps.sessions.begin() as db:
        count = seal_pending(db)
    click.echo(f"sealed {count} events")


# --- demo ---------------------------------------------------------------------------------


@main.group()
def demo() -> None:
    """Demo data and the all-in-one demo."""


@demo.command("seed")
def demo_seed() -> None:
    """Create the demo users and clients (docs/demo.md lists them). Safe to run again."""
    from idp.demo import seed

    deps = _deps()
    with deps.sessions.begin() as db:
        lines = seed(db, deps)
    _announce(deps, "clients")
    for line in lines:
        click.echo(line)


@demo.command("bind-phones")
@click.option("--nexus", "nexus_url", default="http://127.0.0.1:8102", show_default=True)
def demo_bind_phones(nexus_url: str) -> None:
    """Bind phone-<username> in the mock Nexus for the registered demo users (needs it running)."""
    from idp.demo import bind_demo_phones

    for phone in bind_demo_phones(_deps(), nexus_url=nexus_url):
        click.echo(f"bound {phone}")


@demo.command("up")
def demo_up() -> None:
    """Migrate, seed, and run every demo process until Ctrl-C."""
    from idp.demo import run_demo

    run_demo()


# --- serving ------------------------------------------------------------------------------


@main.command("run")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8000, type=int)
def run(host: str, port: int) -> None:
    """Run the IdP in one process (the demo's server)."""
    from werkzeug.serving import run_simple

    from idp import create_app

    app = create_app()
    # Our own access log (idp.access) already records every request, as JSON.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(host, port, app, threaded=True, use_reloader=False)


def prepare_metrics_dir(configured: str | None, port: str) -> str:
    """The workers' shared metrics folder, emptied (their counters must start from zero, and
    the server replaces this process, so nothing could empty it at exit): ``IDP_METRICS_DIR``
    when set, else one folder per listening port in the temporary folder."""
    folder = configured or os.path.join(tempfile.gettempdir(), f"idp-metrics-{port}")
    if os.path.isdir(folder):
        for entry in os.scandir(folder):
            if entry.is_file() and entry.name.endswith(".db"):
                os.unlink(entry.path)  # only the metrics' own files: the folder may be shared
    else:
        os.makedirs(folder, mode=0o700)
    return folder


@main.command("serve")
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=max(2, os.cpu_count() or 2), show_default=True, type=int)
@click.option(
    "--server",
    "server_name",
    type=click.Choice(["granian", "gunicorn"]),
    default="granian",
    show_default=True,
)
@click.option(
    "--threads",
    default=32,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker; without IDP_WAIT_URL a login page waiting for the phone holds one",
)
def serve(bind: str, workers: int, server_name: str, threads: int) -> None:
    """Run the IdP in production mode under a multi-worker WSGI server."""
    try:
        settings = Settings()
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.is_production:
        raise click.ClickException("'idp serve' is production mode: set IDP_MODE=production")
    host, _, port = bind.rpartition(":")
    metrics_dir = prepare_metrics_dir(settings.metrics_dir, port)
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=metrics_dir, IDP_METRICS_DIR=metrics_dir)
    if server_name == "granian":
        command = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--host",
            host,
            "--port",
            port,
            "--workers",
            str(workers),
            "--blocking-threads",
            str(threads),
            "--no-ws",
            "--log-level",
            "warning",
            "idp.wsgi:app",
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            bind,
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--log-level",
            "warning",
            "idp.wsgi:app",
        ]
    click.echo(f"serving {settings.issuer} on {bind} with {workers} {server_name} workers")
    if settings.wait_url:
        click.echo(f"waiter for {settings.wait_url} on {settings.wait_bind}")
        waiter = waiter_command(settings.wait_bind, settings.wait_max_connections)
        sys.exit(_side_by_side([command, waiter], env))
    os.execve(command[0], command, env)  # noqa: S606 - replaces this process with the server


def _side_by_side(commands: list[list[str]], env: dict[str, str]) -> int:
    """Run the IdP's server and the waiter as children of this process: a stop signal here
    stops both, and when one ends the other is stopped. (Not the waiter as a child of the
    IdP's server: granian waits for every child when it stops, the waiter included.)"""
    import signal
    import time

    # Each in a process group of its own, so that a server whose stop hangs is ended with its
    # workers; the stop signal reaches them only through this process.
    children = [
        subprocess.Popen(command, env=env, preexec_fn=_die_with_parent, start_new_session=True)
        for command in commands
    ]

    told: set[int] = set()

    def stop(_signum: int, _frame: object) -> None:
        for child in children:
            # Once: granian stops gracefully at the first SIGTERM and hangs at a second.
            if child.poll() is None and child.pid not in told:
                told.add(child.pid)
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    stop(signal.SIGTERM, None)
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # granian's graceful stop sometimes hangs
            child.wait()
    return children[0].returncode or 0


def waiter_command(bind: str, max_connections: int) -> list[str]:
    """The waiter under granian's ASGI interface: one worker, one event loop, and room for
    every wait it may hold (granian's default admits 1,024 requests at once per worker)."""
    host, _, port = bind.rpartition(":")
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        host,
        "--port",
        port,
        "--workers",
        "1",
        "--backpressure",
        str(max_connections + 64),
        "--backlog",
        "4096",
        "--no-ws",
        "--log-level",
        "warning",
        # A page sends its few headers at once: a connection that trickles them is not one.
        "--http1-header-read-timeout",
        "5000",
        "idp.web.waiter:create_app",
    ]


def _die_with_parent() -> None:
    # Should 'idp serve' itself be killed (SIGKILL: no chance to stop its children), its
    # servers end with it instead of living on alone.
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@main.command("waiter")
@click.option("--bind", default=None, help="Default: IDP_WAIT_BIND")
def waiter(bind: str | None) -> None:
    """Run the waiter alone: login pages wait there for the phone's answer (needs Redis)."""
    try:
        settings = Settings()
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.redis_url:
        raise click.ClickException("the waiter needs IDP_REDIS_URL")
    command = waiter_command(bind or settings.wait_bind, settings.wait_max_connections)
    os.execve(command[0], command, dict(os.environ))  # noqa: S606 - becomes the server


if __name__ == "__main__":
    main()
