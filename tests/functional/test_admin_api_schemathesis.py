"""The OpenAPI document against the running admin API, property-based (schemathesis): every
operation, with a bounded number of generated requests each (valid ones and ones the document
forbids), over a real HTTP server, with a CGD administrator's real token; no answer is a 5xx and
every answer matches its schema.

It writes (units, accounts, suspensions ...), so it runs in a PostgreSQL schema and a Redis
namespace of its own, dropped afterwards: nothing another test reads is touched."""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import select

from idp.accounts.models import User
from idp.audit.service import NO_CONTEXT
from idp.deps import build_deps
from idp.roles.authority import SYSTEM
from idp.roles.authority import grant_admin_role
from idp.roles.models import AdminRole
from idp.settings import Settings
from idp.store.db import make_engine
from idp.store.ephemeral import RedisStore
from tests.conftest import NAMESPACE
from tests.conftest import _delete_namespace
from tests.conftest import _prepare
from tests.conftest import own_schema
from tests.conftest import redis_server_url
from tests.fakes import FakeClock
from tests.functional.test_admin_api import API
from tests.functional.test_admin_api import call
from tests.functional.test_admin_api import designate
from tests.functional.test_admin_api import token_of
from tests.functional.test_admin_console import set_up_office
from tests.push_stack import Stack
from tests.push_stack import push_stack

STAFF = ("cgd1", "head1", "treasury1", "treasury2", "somchai", "malee", "prasert")
EXAMPLES = 25  # per operation and pass: about 1,400 requests, well under a minute


@pytest.fixture
def own_stack(settings: Settings, redis_store: RedisStore, tmp_path: Path) -> Iterator[Stack]:
    import redis

    namespace = f"{NAMESPACE}schemathesis:"
    with own_schema(f"st_{secrets.token_hex(6)}") as url:
        _prepare(url)
        engine = make_engine(url, pool_size=5)
        mine = settings.model_copy(update={"database_url": url, "redis_namespace": namespace})
        deps = build_deps(mine, clock=FakeClock(), store=redis_store, engine=engine)
        try:
            with push_stack(mine, deps, tmp_path, users=STAFF) as running:
                set_up_office(running.deps)
                with running.deps.sessions.begin() as db:
                    cgd = db.scalar(select(User).where(User.username == "cgd1"))
                    grant_admin_role(db, SYSTEM, cgd, AdminRole.CGD_ADMIN, now=deps.clock.now(),
                                     actor="test", audit=NO_CONTEXT)  # fmt: skip
                yield running
        finally:
            engine.dispose()
            _delete_namespace(redis.Redis.from_url(redis_server_url()))


def _known_ids(stack: Stack, token: str) -> dict[str, str]:
    """Path values that exist, so that the run reaches the operations' work and not only their
    404s: a person, a lost-device case and a designation request."""
    case = call(stack, token, "POST", "/users/somchai/suspend-phone", json={"reason": "stolen"})
    submitted = designate(stack, token)
    assert (case.status_code, submitted.status_code) == (201, 201), (case.text, submitted.text)
    return {"username": "malee", "case_id": case.json()["id"],
            "request_id": submitted.json()["id"]}  # fmt: skip


def test_the_document_holds_for_every_generated_request(own_stack):
    base = f"{own_stack.idp}{API}"
    raw = requests.get(f"{base}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw)
    token = token_of(own_stack, "cgd1")
    headers = {"Authorization": f"Bearer {token}"}
    known = _known_ids(own_stack, token)
    session = requests.Session()
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in raw["paths"].values())
    for operation in operations:
        names = re.findall(r"\{(\w+)\}", operation.path)
        # Generated requests, requests the document forbids (each must be refused, not
        # crash), and (where the path has values) valid ones on things that exist.
        passes = [({}, GenerationMode.POSITIVE), ({}, GenerationMode.NEGATIVE)]
        if names:
            passes.append(({name: known[name] for name in names}, GenerationMode.POSITIVE))
        for path_parameters, mode in passes:

            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,  # the same requests every run: no flaky seed
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode, path_parameters=path_parameters or None))
            def holds(case: schemathesis.Case) -> None:
                response = case.call(base_url=base, session=session, headers=headers, timeout=10)
                statuses[response.status_code] += 1
                case.validate_response(
                    response, checks=[not_a_server_error, response_schema_conformance]
                )

            try:
                holds()
            except Unsatisfiable:
                # Nothing to get wrong (GET /openapi.json takes no input): no negative case.
                if mode is not GenerationMode.NEGATIVE:
                    raise
            except Exception as failure:  # every operation's failure, not only the first
                failures.append(f"{operation.label} {mode.value} {path_parameters}: "
                                f"{str(failure)[:1500]}")  # fmt: skip
    assert not failures, "\n\n".join(failures)
    # The run reached the operations' work, not only their refusals.
    assert statuses[200] + statuses[201] > 100, statuses
