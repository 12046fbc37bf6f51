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
then the peer, in turn, ``--rounds`` times, so both see the same machine. Needs wrk (installed
with apt when missing and run as root), node and npm, PostgreSQL and Redis on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from sqlalchemy import create_engine
from sqlalchemy import text

# The world-building helpers of the suspension benchmark (same folder, run as a script).
from suspension import PYTHON
from suspension import ROOT
from suspension import World
from suspension import clean_environ
from suspension import forget_earlier_runs
from suspension import free_port
from suspension import idp_settings
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
        yield Comparison(idp_target(idp_url), peer, world.database_url, env)
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
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, world.idp.name, world.peer.name)
    ok = recorded >= answered and verified.startswith("intact")
    errors = sum(
        r["errors"] for results in rounds for pair in results.values() for r in pair.values()
    )
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
    parser.add_argument("--idp-threads", type=int, default=8, help="granian blocking threads")
    parser.add_argument("--peer-major", default="9", help="node-oidc-provider version for npm")
    parser.add_argument("--no-password", dest="password", action="store_false",
                        help="skip the password-step measurement")  # fmt: skip
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
