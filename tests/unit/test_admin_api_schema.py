"""The admin API's one schema source: every route is in the document and every path is a
route; each operation's bodies and answers are the models' own JSON Schemas; enumerations are
the domain's; and every refusal the API can meet has its HTTP status on purpose."""

from __future__ import annotations

import gc
import importlib
import pkgutil
from typing import Any

import pytest
from flask import Flask
from pydantic import BaseModel

from idp.api import schemas
from idp.api.common import STATUS
from idp.api.common import InvalidBodyError
from idp.api.common import bp
from idp.api.common import status_of
from idp.api.openapi import REF_TEMPLATE
from idp.api.openapi import component_schemas
from idp.api.openapi import document
from idp.errors import IdpError
from idp.revocation.models import CallerCheck
from idp.revocation.models import CaseKind
from idp.revocation.models import SuspensionReason
from idp.roles import errors as role_errors
from idp.roles.models import AdminRole
from idp.roles.models import OrderKind
from idp.roles.models import RequestStatus
from idp.roles.models import Role

API = "/api/admin/v1"
# The packages whose refusals reach the admin API (it calls them, directly or through idp.web).
DOMAINS = ("idp.accounts", "idp.roles", "idp.revocation", "idp.audit", "idp.api", "idp.web.trail")


def _app() -> Flask:
    # The blueprint's url_map alone: no database is needed to compare routes and document.
    app = Flask(__name__)
    import idp.api.admin
    import idp.api.audit
    import idp.api.helpdesk  # noqa: F401

    app.register_blueprint(bp)
    return app


def routes_of(app: Flask) -> set[tuple[str, str]]:
    return {
        (rule.rule.removeprefix(API).replace("<", "{").replace(">", "}"), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(API + "/")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item}


def _model(ref: dict[str, Any]) -> type[BaseModel]:
    name = ref["$ref"].removeprefix(REF_TEMPLATE.format(model=""))
    return {m.__name__: m for m in (*schemas.REQUESTS, *schemas.ANSWERS)}[name]


def test_every_route_is_documented_and_every_documented_path_is_a_route():
    assert routes_of(_app()) == documented(document("https://idp.example"))


def test_a_route_without_its_document_is_caught():
    app = _app()
    app.add_url_rule(f"{API}/units/<code>/rename", "rename", lambda code: "", methods=["POST"])
    assert routes_of(app) - documented(document("https://idp.example")) == {
        ("/units/{code}/rename", "post")
    }


def test_every_operation_names_models_whose_schemas_are_the_components():
    doc = document("https://idp.example")
    components = doc["components"]["schemas"]
    seen: set[str] = set()
    for item in doc["paths"].values():
        for operation in item.values():
            contents = [
                *operation.get("requestBody", {}).get("content", {}).items(),
                *(
                    kind
                    for status, response in operation["responses"].items()
                    if "content" in response
                    for kind in response["content"].items()
                ),
            ]
            for media_type, content in contents:
                if "schema" not in content or media_type == "text/csv":
                    continue
                model = _model(content["schema"])
                mode = "validation" if model in schemas.REQUESTS else "serialization"
                generated = model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
                generated.pop("$defs", None)
                assert components[model.__name__] == generated, model.__name__
                seen.add(model.__name__)
    # Every model is used by an operation (Error through the shared Error response).
    assert {m.__name__ for m in (*schemas.REQUESTS, *schemas.ANSWERS)} - seen == {"Error"}
    assert doc["components"]["responses"]["Error"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


@pytest.mark.parametrize(
    "enum",
    [Role, AdminRole, OrderKind, RequestStatus, SuspensionReason, CaseKind, CallerCheck],
)
def test_enumerations_are_the_domains_own(enum):
    assert component_schemas()[enum.__name__]["enum"] == [member.value for member in enum]


def test_the_document_holds_no_enumeration_typed_out_again():
    doc = document("https://idp.example")
    domain = {enum.__name__ for enum in (Role, AdminRole, OrderKind, RequestStatus,
                                         SuspensionReason, CaseKind, CallerCheck)}  # fmt: skip

    def enums(node: Any, where: str) -> list[str]:
        if isinstance(node, dict):
            found = [where] if "enum" in node and where.rsplit("/", 1)[-1] not in domain else []
            return found + [x for k, v in node.items() for x in enums(v, f"{where}/{k}")]
        if isinstance(node, list):
            return [x for i, v in enumerate(node) for x in enums(v, f"{where}/{i}")]
        return []

    assert enums(doc, "") == []


def _refusals() -> set[type[IdpError]]:
    for package in ("idp.accounts", "idp.roles", "idp.revocation", "idp.audit", "idp.api"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            importlib.import_module(info.name)
    importlib.import_module("idp.web.trail")
    found: set[type[IdpError]] = set()
    todo = [IdpError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return {cls for cls in found if cls.__module__.startswith(DOMAINS) or cls is IdpError}


def test_every_refusal_the_api_can_meet_has_its_status():
    missing = {f"{cls.__module__}.{cls.__name__}" for cls in _refusals() - set(STATUS)}
    assert not missing, f"give these an HTTP status in idp.api.common.STATUS: {missing}"


def test_a_new_refusal_without_a_status_is_caught():
    class BrandNewRefusalError(role_errors.RoleError):
        code = "brand_new"

    BrandNewRefusalError.__module__ = "idp.roles.errors"

    try:
        assert BrandNewRefusalError in _refusals() - set(STATUS)
    finally:
        del BrandNewRefusalError  # the class lingers in __subclasses__ until collected
        gc.collect()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (role_errors.UnknownPersonError(), 404),
        (role_errors.OwnRequestError(), 403),
        (role_errors.OrderTooLargeError(), 413),
        (role_errors.AlreadyDecidedError(), 409),
        (InvalidBodyError(), 400),
    ],
)
def test_statuses_come_from_the_class(error, status):
    assert status_of(error) == status


def test_statuses_are_the_documented_ones():
    assert set(STATUS.values()) <= {400, 403, 404, 409, 413}
