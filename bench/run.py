"""Load benchmark of the IdP's hot paths against a running server, with wrk.

    python bench/run.py [--url http://127.0.0.1:8000] [--duration 10] [--connections 32]

Needs the demo client ``demo-service`` on the target (``idp demo seed``) and ``wrk``
(Debian: ``apt-get install wrk``). Prints requests per second and p50/p99 latency per path.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SERVICE = ("demo-service", "demo-service-secret")

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


def basic_auth() -> str:
    return "Basic " + base64.b64encode(":".join(SERVICE).encode()).decode()


def fetch_service_token(url: str) -> str:
    request = urllib.request.Request(
        url + "/token",
        data=b"grant_type=client_credentials",
        headers={
            "Authorization": basic_auth(),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["access_token"])


def scenarios(url: str) -> list[Scenario]:
    form = (("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", basic_auth()))
    token = fetch_service_token(url)
    return [
        Scenario(
            "token (client_credentials)", "/token", "POST", "grant_type=client_credentials", form
        ),
        Scenario(
            "introspection",
            "/introspect",
            "POST",
            urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"}),
            form,
        ),
        Scenario("jwks", "/jwks.json"),
        Scenario("discovery", "/.well-known/openid-configuration"),
    ]


def run_wrk(url: str, scenario: Scenario, args: argparse.Namespace) -> dict[str, float]:
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in scenario.headers)
    body = json.dumps(scenario.body) if scenario.body is not None else "nil"
    script = LUA_TEMPLATE.format(method=scenario.method, body=body, headers=headers)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    command = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
        "-s", handle.name, url + scenario.path,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    Path(handle.name).unlink()
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--duration", type=int, default=10, help="seconds per path")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (load generator)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    results = {s.name: run_wrk(args.url, s, args) for s in scenarios(args.url)}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'path':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in results.items():
        figures = f"{r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>7.0f}"
        print(f"{name:<28} {figures}")
    return 0 if all(r["errors"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
