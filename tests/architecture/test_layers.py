"""The shape of the code, held in place: dependencies point inward
(api -> domain <- infra), the domain needs nothing but the standard library and
msgspec, and no module imports itself through a circle."""

from __future__ import annotations

import sys

from tests.architecture.imports import ROOT, cycles, import_graph, modules

DOMAIN_MAY_IMPORT = {"msgspec"}


def _top_level_imports(path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_there_is_no_import_circle():
    assert cycles(import_graph()) == []


def test_domain_imports_only_the_standard_library_and_msgspec():
    allowed = set(sys.stdlib_module_names) | DOMAIN_MAY_IMPORT | {"domain", "__future__"}
    offenders = {
        name: sorted(_top_level_imports(path) - allowed)
        for name, path in modules().items()
        if name.startswith("domain") and _top_level_imports(path) - allowed
    }
    assert offenders == {}


def test_domain_never_imports_api_or_infra():
    graph = import_graph()
    offenders = {
        name: sorted(t for t in targets if t.startswith(("api", "infra")))
        for name, targets in graph.items()
        if name.startswith("domain") and any(t.startswith(("api", "infra")) for t in targets)
    }
    assert offenders == {}


def test_infra_never_imports_api():
    graph = import_graph()
    offenders = {
        name: sorted(t for t in targets if t.startswith("api"))
        for name, targets in graph.items()
        if name.startswith("infra") and any(t.startswith("api") for t in targets)
    }
    assert offenders == {}


def test_no_domain_module_is_longer_than_about_450_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for name, path in modules().items()
        if name.startswith("domain") and (n := len(path.read_text().splitlines())) > 460
    }
    assert long == {}


# Where the api is wired to its adapters: the app (its lifespan opens the
# composition root), the operator command line, and the OpenAPI writer (which
# builds the app with placeholder settings).
API_WIRING = ("api.app", "api.openapi_document", "api.cli")


def test_api_imports_infra_only_where_it_wires_the_app():
    graph = import_graph()
    offenders = {
        name: sorted(t for t in targets if t.startswith("infra"))
        for name, targets in graph.items()
        if name.startswith("api")
        and not name.startswith(API_WIRING)
        and any(t.startswith("infra") for t in targets)
    }
    assert offenders == {}
