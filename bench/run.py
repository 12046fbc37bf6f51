"""Side-by-side load benchmark: this IdP and node-oidc-provider, same client, same core.

    python bench/run.py                     # the comparison (``make bench``)
    python bench/run.py --url http://127.0.0.1:8000   # only a running IdP, as before

The comparison builds its own world on loopback ports and takes it down again: the
PostgreSQL database ``idp_bench`` (dropped and recreated; the name must contain ``bench``),
the Redis keys under ``bench-run:`` in db 1, the IdP in production mode (``idp serve``,
granian, one worker) with the demo data (``idp demo seed``; ``demo-service`` is the
client), and node-oidc-provider installed with npm into a scratch folder at run time and
configured by ``bench/peer/provider.mjs`` with the same client id and secret. Both servers
are pinned to one core (taskset), wrk to another, and each workload runs against the IdP,
then the peer, in turn, ``--rounds`` times, so both see the same machine. Then the
password-login workload (``--no-login`` skips it): browsers driven over HTTP through
/authorize and the password step of the IdP alone, with its CPU per login read from /proc.
Needs wrk (installed with apt when missing and run as root), node and npm, PostgreSQL and
Redis on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from statistics import median

import requests
from sqlalchemy import create_engine
from sqlalchemy import text

# The world-building helpers of the suspension benchmark (same folder, run as a script).
from suspension import PASSWORD  # what create_users gives the bench's users
from suspension import PYTHON
from suspension import ROOT
from suspension import World
from suspension import bind_phones
from suspension import clean_environ
from suspension import create_users
from suspension import forget_earlier_runs
from suspension import free_port
from suspension import idp_settings
from suspension import in_process_deps
from suspension import pkce_pair
from suspension import recreate_database
from suspension import run_cli
from suspension import start_server
from suspension import stop_server

SERVICE = ("demo-service", "demo-service-secret")
NAMESPACE = "bench-run:"
TOKEN_BODY = "grant_type=client_credentials&scope=helpdesk"
PEER_OPAQUE_RESOURCE = "urn:bench:opaque"  # see bench/peer/provider.mjs

# wrk calls done() once at the end; latencies are in microseconds.
LUA_TEMPLATE = """
wrk.method = "{method}"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{{"requests":%d,"errors":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f}}\\n',
    summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    method: str = "GET"
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Target:
    """A server under load and where it keeps each endpoint."""

    name: str
    url: str
    token_path: str
    introspection_path: str
    jwks_path: str
    introspected_token_extra: str = ""  # what the token request adds for the introspected token

    def scenarios(self) -> list[Scenario]:
        form = (
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", basic_auth()),
        )
        token = fetch_token(self.url + self.token_path, TOKEN_BODY + self.introspected_token_extra)
        introspect = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"})
        return [
            Scenario("token", self.token_path, "POST", TOKEN_BODY, form),
            Scenario("introspection", self.introspection_path, "POST", introspect, form),
            Scenario("jwks", self.jwks_path),
            Scenario("discovery", "/.well-known/openid-configuration"),
        ]


def idp_target(url: str) -> Target:
    return Target("IdP", url, "/token", "/introspect", "/jwks.json")


def basic_auth() -> str:
    return "Basic " + base64.b64encode(":".join(SERVICE).encode()).decode()


def fetch_token(token_url: str, body: str) -> str:
    request = urllib.request.Request(
        token_url,
        data=body.encode(),
        headers={
            "Authorization": basic_auth(),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["access_token"])


def run_wrk(
    url: str, scenario: Scenario, args: argparse.Namespace, seconds: int
) -> dict[str, float]:
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in scenario.headers)
    body = json.dumps(scenario.body) if scenario.body is not None else "nil"
    script = LUA_TEMPLATE.format(method=scenario.method, body=body, headers=headers)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    pin = ["taskset", "-c", str(args.load_core)] if args.load_core is not None else []
    command = [
        *pin, "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s",
        "-s", handle.name, url + scenario.path,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    Path(handle.name).unlink()
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- tools ------------------------------------------------------------------------------------


def ensure_wrk() -> None:
    if shutil.which("wrk") is not None:
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    print("installing wrk with apt-get", file=sys.stderr, flush=True)
    apt = ["apt-get", "install", "-y", "-qq", "wrk"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(apt, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(apt, env=env, check=True, capture_output=True)


def install_peer(folder: Path, major: str) -> str:
    """npm-install node-oidc-provider into ``folder`` (never into the repository)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: the peer is a Node.js server")
    subprocess.run(
        ["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--silent",
         f"oidc-provider@{major}"],
        check=True, capture_output=True,
    )  # fmt: skip
    shutil.copy(ROOT / "bench" / "peer" / "provider.mjs", folder / "provider.mjs")
    manifest = folder / "node_modules" / "oidc-provider" / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def output_of(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the comparison ---------------------------------------------------------------------------


@dataclass
class Comparison:
    idp: Target
    peer: Target
    database_url: str
    env: dict[str, str]
    idp_pid: int = 0  # the process started for the IdP (granian's main process)


def seeded_world(
    database_url: str, redis_url: str, issuer: str, namespace: str
) -> tuple[World, dict[str, str]]:
    """A fresh database with the demo data, and the production settings of an IdP on it."""
    world = World(
        database_url=database_url, redis_url=redis_url, a=issuer, b=issuer,
        nexus=f"http://127.0.0.1:{free_port()}",  # nothing listens: no login is measured
    )  # fmt: skip
    env = {**clean_environ(), **idp_settings(world), "IDP_REDIS_NAMESPACE": namespace}
    recreate_database(world.database_url)
    forget_earlier_runs(world.redis_url, namespace)
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "seed")
    return world, env


@contextmanager
def side_by_side(args: argparse.Namespace, folder: Path) -> Iterator[Comparison]:
    idp_url = f"http://127.0.0.1:{free_port()}"
    peer_port = free_port()
    world, env = seeded_world(args.database_url, args.redis_url, idp_url, NAMESPACE)
    pin = ["taskset", "-c", str(args.server_core)]
    started = []
    try:
        started.append(start_server(
            "IdP", [*pin, PYTHON, "-m", "idp.cli", "serve", "--bind", idp_url[7:],
                    "--workers", "1", "--threads", str(args.idp_threads)],
            env, idp_url, folder / "idp.log", "/readyz",
        ))  # fmt: skip
        peer_env = {**clean_environ(), "NODE_ENV": "production"}
        peer_url = f"http://127.0.0.1:{peer_port}"
        started.append(start_server(
            "node-oidc-provider",
            [*pin, "node", str(folder / "provider.mjs"), str(peer_port), *SERVICE],
            peer_env, peer_url, folder / "peer.log", "/.well-known/openid-configuration",
        ))  # fmt: skip
        peer = Target(
            "node-oidc-provider",
            peer_url,
            "/token",
            "/token/introspection",
            "/jwks",
            introspected_token_extra="&resource=" + urllib.parse.quote(PEER_OPAQUE_RESOURCE),
        )
        yield Comparison(
            idp_target(idp_url), peer, world.database_url, env, idp_pid=started[0].process.pid
        )
    finally:
        for server in reversed(started):
            stop_server(server)


def count_tokens_recorded(database_url: str) -> int:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM audit_events WHERE event = 'token.issued'")
        ).scalar_one()
    engine.dispose()
    return int(count)


def password_rate(args: argparse.Namespace) -> float:
    """argon2id verifications per second on the server core (the password step of a login)."""
    code = (
        "import time\n"
        "from idp.accounts.passwords import hash_password, verify_password\n"
        "h = hash_password('Bench-Pass-2026-xyz!')\n"
        "n = 0; t0 = time.perf_counter()\n"
        f"while time.perf_counter() - t0 < {args.duration}:\n"
        "    verify_password(h, 'Bench-Pass-2026-xyz!'); n += 1\n"
        "print(n / (time.perf_counter() - t0))\n"
    )
    done = subprocess.run(
        ["taskset", "-c", str(args.server_core), PYTHON, "-c", code],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return float(done.stdout.strip())


# --- the password-login workload ---------------------------------------------------------------

LOGIN_CLIENT = "demo-confidential"
LOGIN_CALLBACK = "http://127.0.0.1:9999/callback"
LOGIN_USER = "bench-login-{:03d}"
LOGIN_GOAL_RATE = 20.0  # logins per second per core through the password step (issue 12)
LOGIN_GOAL_REST = 10.0  # per cent of a login's CPU beside the argon2id verification


class LoginRefusedError(Exception):
    """An answer a browser at this point of the login should not get."""


def seed_login_users(env: dict[str, str], folder: Path, count: int) -> list[str]:
    """Users with a bound phone: without one, a correct password ends at "Soft Token
    required", not at the confirmation step. One per browser, because the password step locks
    the account's failure counter while it hashes (idp/accounts/service.py): two browsers on
    one account would wait for each other. The phones are bound through the real protocol by
    the mock Nexus, started on the relay address the IdP was given and stopped before the run."""
    usernames = [LOGIN_USER.format(n) for n in range(count)]
    relay = env["IDP_NEXUS_RELAY_URL"]
    nexus_env = {
        **clean_environ(),
        "NEXUS_RELAY_URL": relay,
        "NEXUS_IDP_URL": env["IDP_ISSUER"],
        "NEXUS_STATE_FILE": str(folder / "nexus-phones.json"),
        "NEXUS_API_KEY": env["IDP_NEXUS_API_KEY"],
    }
    nexus = start_server(
        "mock Nexus", [PYTHON, "-m", "mock_nexus", "--port", relay.rsplit(":", 1)[1]],
        nexus_env, relay, folder / "nexus.log", "/healthz",
    )  # fmt: skip
    deps = in_process_deps(env)
    try:
        create_users(deps, usernames)
        bind_phones(deps, usernames, relay, concurrency=4)
    finally:
        deps.engine.dispose()
        stop_server(nexus)
    return usernames


class LoginBrowser:
    """One browser after another on one kept-alive connection. Cookies are kept by hand:
    production mode marks them Secure, and requests sends none of those over http (a browser
    does, on a loopback origin)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.http = requests.Session()
        self.cookies: dict[str, str] = {}

    def request(self, method: str, location: str, **kwargs: object) -> requests.Response:
        url = location if location.startswith("http") else self.origin + location
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.http.request(method, url, headers={"Cookie": cookie} if cookie else {},
                                     allow_redirects=False, timeout=30, **kwargs)  # type: ignore[arg-type]  # fmt: skip
        self.http.cookies.clear()
        for header in response.raw.headers.getlist("Set-Cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response


def password_login(browser: LoginBrowser, username: str, password: str) -> None:
    """A new browser: /authorize with PKCE, the login page, the password form with its CSRF
    token; done at the answer that sends it to the phone confirmation (no push is sent
    before that page is shown, and it is not)."""
    browser.cookies.clear()
    _verifier, challenge = pkce_pair()
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": LOGIN_CLIENT, "redirect_uri": LOGIN_CALLBACK,
        "scope": "openid profile", "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
        "code_challenge_method": "S256",
    })  # fmt: skip
    page = browser.request("GET", "/authorize?" + query)
    while page.status_code in (302, 303):  # /authorize, /login, /login/password
        location = page.headers["Location"]
        if not location.startswith(("/", browser.origin)):
            raise LoginRefusedError(f"sent away from the IdP: {location[:120]}")
        page = browser.request("GET", location)
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    if page.status_code != 200 or action is None:
        raise LoginRefusedError(f"no login form ({page.status_code})")
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    fields.update(username=username, password=password)
    posted = browser.request("POST", action.group(1).replace("&amp;", "&"), data=fields)
    location = posted.headers.get("Location", "")
    if posted.status_code != 303 or "/login/confirm?" not in location:
        raise LoginRefusedError(f"password step answered {posted.status_code} {location[:120]}")


@dataclass
class LoginTally:
    logins: int = 0
    errors: int = 0
    first_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.logins += 1
                return
            self.errors += 1
            self.first_error = self.first_error or error


def drive_logins(origin: str, usernames: list[str], seconds: float, core: int | None) -> LoginTally:
    """One browser per user, all in parallel, each logging in again and again until the time
    is up (a login under way then is finished and counted)."""
    tally = LoginTally()
    deadline = time.monotonic() + seconds

    def browse(username: str) -> None:
        browser = LoginBrowser(origin)
        while time.monotonic() < deadline:
            try:
                password_login(browser, username, PASSWORD)
            except (requests.RequestException, LoginRefusedError) as error:
                tally.note(f"{type(error).__name__}: {error}")
            else:
                tally.note(None)

    # The browsers' threads inherit this thread's core: the load core, away from the server.
    mask = os.sched_getaffinity(0)
    if core is not None:
        os.sched_setaffinity(0, {core})
    try:
        with ThreadPoolExecutor(len(usernames)) as pool:
            list(pool.map(browse, usernames))
    finally:
        os.sched_setaffinity(0, mask)
    return tally


def process_tree_cpu(root: int) -> tuple[float, int]:
    """CPU seconds (user + system) of ``root`` and its descendants (granian's main process
    and its worker), and how many processes that is, from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    used: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        after_name = stat.rsplit(")", 1)[1].split()  # fields 3 on: state, ppid, ...
        parent[int(entry.name)] = int(after_name[1])
        used[int(entry.name)] = int(after_name[11]) + int(after_name[12])  # utime, stime
    tree = {root}
    grew = True
    while grew:
        found = {pid for pid, ppid in parent.items() if ppid in tree} - tree
        grew = bool(found)
        tree |= found
    return sum(used.get(pid, 0) for pid in tree) / ticks, len(tree & used.keys())


def argon2id_cpu_ms(args: argparse.Namespace) -> float:
    """CPU milliseconds of one argon2id verification at the IdP's parameters, on the server core."""
    code = (
        "import time\n"
        "from idp.accounts.passwords import hash_password, verify_password\n"
        "h = hash_password('Bench-Pass-2026-xyz!')\n"
        "verify_password(h, 'Bench-Pass-2026-xyz!')\n"
        "n = 0; t0 = time.perf_counter(); c0 = time.thread_time()\n"
        f"while time.perf_counter() - t0 < {min(args.duration, 8)}:\n"
        "    verify_password(h, 'Bench-Pass-2026-xyz!'); n += 1\n"
        "print((time.thread_time() - c0) / n * 1000)\n"
    )
    done = subprocess.run(
        ["taskset", "-c", str(args.server_core), PYTHON, "-c", code],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return float(done.stdout.strip())


def login_workload(args: argparse.Namespace, world: Comparison, folder: Path) -> dict[str, object]:
    """Password logins over HTTP against the running IdP: logins per second through the
    password step, the server's CPU per login, and how much of it is not argon2id."""
    origin = world.idp.url
    progress(f"password logins: seeding {args.login_browsers} users with bound phones")
    usernames = seed_login_users(world.env, folder, args.login_browsers)
    progress("password logins: warming up")
    drive_logins(origin, usernames, args.warmup, args.load_core)
    idle_before, _ = process_tree_cpu(world.idp_pid)
    time.sleep(3)
    idle_after, _ = process_tree_cpu(world.idp_pid)
    idle_ms_per_second = (idle_after - idle_before) / 3 * 1000
    progress(f"password logins: {args.login_browsers} browsers for {args.duration} s")
    cpu_before, processes = process_tree_cpu(world.idp_pid)
    started = time.perf_counter()
    tally = drive_logins(origin, usernames, args.duration, args.load_core)
    elapsed = time.perf_counter() - started
    cpu_after, _ = process_tree_cpu(world.idp_pid)
    progress("password logins: one argon2id verification's CPU on the server core")
    argon2_ms = argon2id_cpu_ms(args)
    per_login_ms = (cpu_after - cpu_before) / tally.logins * 1000 if tally.logins else 0.0
    rest = (per_login_ms - argon2_ms) / per_login_ms * 100 if per_login_ms else 0.0
    rate = tally.logins / elapsed
    # The server's own jobs (audit sealing, the revocation mirror's refresh) run whether or
    # not anyone logs in; their idle share is in the figures above, and also given apart.
    busy_ms = per_login_ms - idle_ms_per_second * elapsed / tally.logins if tally.logins else 0.0
    return {
        "browsers": len(usernames),
        "seconds": round(elapsed, 2),
        "logins": tally.logins,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "server_processes": processes,
        "server_cpu_seconds": round(cpu_after - cpu_before, 2),
        "idle_server_cpu_ms_per_second": round(idle_ms_per_second, 1),
        "logins_per_second": round(rate, 1),
        "cpu_ms_per_login": round(per_login_ms, 2),
        "argon2id_cpu_ms": round(argon2_ms, 2),
        "rest_percent": round(rest, 1),
        "cpu_ms_per_login_without_idle_jobs": round(busy_ms, 2),
        "rest_percent_without_idle_jobs": round((busy_ms - argon2_ms) / busy_ms * 100, 1)
        if busy_ms
        else 0.0,
        "logins_per_second_per_core_of_cpu": round(1000 / per_login_ms, 1) if per_login_ms else 0.0,
        "meets_rate": rate >= LOGIN_GOAL_RATE,
        "meets_rest": rest <= LOGIN_GOAL_REST,
    }


def print_login_report(login: dict[str, object]) -> None:
    def verdict(ok: object) -> str:
        return "met" if ok else "NOT met"

    print(f"password step: {login['logins_per_second']} logins/s; CPU per login "
          f"{login['cpu_ms_per_login']} ms, of which argon2id {login['argon2id_cpu_ms']} ms; "
          f"the rest {login['rest_percent']} %")  # fmt: skip
    print(f"  goals: >= {LOGIN_GOAL_RATE:.0f} logins/s {verdict(login['meets_rate'])}, rest <= "
          f"{LOGIN_GOAL_REST:.0f} % {verdict(login['meets_rest'])}; {login['logins']} logins by "
          f"{login['browsers']} browsers in {login['seconds']} s, {login['errors']} errors; "
          f"{login['server_cpu_seconds']} s of server CPU ({login['server_processes']} "
          f"processes; {login['idle_server_cpu_ms_per_second']} ms/s when idle)")  # fmt: skip
    print(f"  one whole core at {login['cpu_ms_per_login']} ms per login: "
          f"{login['logins_per_second_per_core_of_cpu']} logins/s; without the server's idle "
          f"jobs {login['cpu_ms_per_login_without_idle_jobs']} ms per login, the rest "
          f"{login['rest_percent_without_idle_jobs']} %")  # fmt: skip
    if login["first_error"]:
        print(f"  first error: {login['first_error']}")


def compare(args: argparse.Namespace) -> int:
    ensure_wrk()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: one for the servers, one for wrk")
    folder = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    progress(f"installing node-oidc-provider@{args.peer_major} with npm into {folder}")
    peer_version = install_peer(folder, args.peer_major)
    load_before = load_average()
    rounds: list[dict[str, dict[str, dict[str, float]]]] = []
    try:
        with side_by_side(args, folder) as world:
            targets = (world.idp, world.peer)
            plans = {t.name: t.scenarios() for t in targets}
            progress("warming up")
            for target in targets:
                for scenario in plans[target.name]:
                    run_wrk(target.url, scenario, args, args.warmup)
            tokens_before = count_tokens_recorded(world.database_url)
            answered = 0
            for number in range(args.rounds):
                results: dict[str, dict[str, dict[str, float]]] = {}
                for index, scenario in enumerate(plans[world.idp.name]):
                    for target in targets:
                        progress(f"round {number + 1}: {scenario.name} at {target.name}")
                        result = run_wrk(target.url, plans[target.name][index], args, args.duration)
                        results.setdefault(scenario.name, {})[target.name] = result
                        if target is world.idp and scenario.name == "token":
                            answered += int(result["requests"] - result["errors"])
                rounds.append(results)
            time.sleep(2.5)  # the IdP's sealer runs each second
            recorded = count_tokens_recorded(world.database_url) - tokens_before
            verified = run_cli(world.env, "audit", "verify").strip().splitlines()[0]
            login = login_workload(args, world, folder) if args.login else None
        password = password_rate(args) if args.password else None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    load_after = load_average()
    report = {
        "machine": f"{os.cpu_count()} cores, {cpu_model()}",
        "commit": output_of("git", "describe", "--always", "--dirty"),
        "python": platform.python_version(),
        "node": output_of("node", "--version"),
        "node_oidc_provider": peer_version,
        "settings": (
            f"servers pinned to core {args.server_core}, wrk to core {args.load_core}; "
            f"{args.connections} connections, {args.threads} wrk thread(s), {args.duration} s "
            f"per run ({args.warmup} s warm-up); IdP: granian 1 worker x {args.idp_threads} "
            f"threads, PostgreSQL + Redis (not pinned)"
        ),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rounds": rounds,
        "tokens_answered": answered,
        "tokens_recorded": recorded,
        "audit_chain": verified,
        "password_verifications_per_second": password,
        "password_login": login,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, world.idp.name, world.peer.name)
    ok = recorded >= answered and verified.startswith("intact")
    errors = sum(
        r["errors"] for results in rounds for pair in results.values() for r in pair.values()
    )
    if login is not None:
        errors += int(str(login["errors"]))
    return 0 if ok and errors == 0 else 1


def print_report(report: dict, idp: str, peer: str) -> None:  # type: ignore[type-arg]
    for key in ("machine", "commit", "python", "node", "node_oidc_provider", "settings",
                "load_average_before", "load_average_after"):  # fmt: skip
        print(f"{key.replace('_', ' ')}: {report[key]}")
    print()
    print(f"| workload | round | {peer} req/s (p50 / p99 ms) | IdP req/s (p50 / p99 ms) | ratio |")
    print("|---|---|---|---|---|")
    rounds = report["rounds"]
    for name in rounds[0]:
        ratios = []
        for number, results in enumerate(rounds, 1):
            theirs, ours = results[name][peer], results[name][idp]
            ratio = ours["rps"] / theirs["rps"] if theirs["rps"] else 0.0
            ratios.append(ratio)
            print(f"| {name} | {number} | {cell(theirs)} | {cell(ours)} | {ratio:.2f}× |")
        print(f"| {name} | median | | | **{median(ratios):.2f}×** |")
    print()
    print(f"tokens answered by the IdP: {report['tokens_answered']}, "
          f"token.issued rows written meanwhile: {report['tokens_recorded']}")  # fmt: skip
    print(f"audit chain: {report['audit_chain']}")
    if report["password_verifications_per_second"] is not None:
        rate = report["password_verifications_per_second"]
        print(f"password step (argon2id m=19 MiB, t=2, p=1), one core: {rate:.1f} per second")
    if report["password_login"] is not None:
        print_login_report(report["password_login"])


def cell(r: dict[str, float]) -> str:
    errors = f", {r['errors']:.0f} errors" if r["errors"] else ""
    return f"{r['rps']:,.0f} ({r['p50_ms']:.1f} / {r['p99_ms']:.1f}){errors}"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- a running IdP only -----------------------------------------------------------------------


def against_running(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    target = idp_target(args.url)
    results = {s.name: run_wrk(args.url, s, args, args.duration) for s in target.scenarios()}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'path':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in results.items():
        figures = f"{r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>7.0f}"
        print(f"{name:<28} {figures}")
    return 0 if all(r["errors"] == 0 for r in results.values()) else 1


def add_waiters_arguments(parser: argparse.ArgumentParser) -> None:
    """The waiters workload (bench/waiters.py): pages waiting for their phone at once."""
    parser.add_argument(
        "--waiters",
        type=int,
        default=0,
        help="run only the waiters workload with this many waits (e.g. 2000)",
    )
    parser.add_argument(
        "--answer-rate",
        type=float,
        default=250.0,
        help="phone answers per second in the waiters workload",
    )
    parser.add_argument(
        "--waiters-database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/idp_bench_waiters",
        help="the waiters workload's own database (dropped and recreated)",
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="load this running IdP only (no peer, no pinning)")
    parser.add_argument("--duration", type=int, default=12, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per path before measuring")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each workload per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (load generator)")
    parser.add_argument("--server-core", type=int, default=0, help="the core both servers run on")
    parser.add_argument("--load-core", type=int, default=1, help="the core wrk runs on")
    parser.add_argument(
        "--idp-threads",
        type=int,
        default=32,
        help="granian blocking threads (32: what 'idp serve' runs by default)",
    )
    parser.add_argument("--peer-major", default="9", help="node-oidc-provider version for npm")
    parser.add_argument("--no-password", dest="password", action="store_false",
                        help="skip the password-step measurement")  # fmt: skip
    parser.add_argument("--no-login", dest="login", action="store_false",
                        help="skip the password-login workload")  # fmt: skip
    parser.add_argument("--login-browsers", type=int, default=16,
                        help="parallel browsers in the login workload, one user each")  # fmt: skip
    parser.add_argument("--database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/idp_bench",
                        help="dropped and recreated; its name must contain 'bench'")  # fmt: skip
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/1")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_waiters_arguments(parser)
    args = parser.parse_args()
    if args.waiters:
        from waiters import run_waiters

        return run_waiters(args)
    if args.url:
        args.load_core = None
        return against_running(args)
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
