"""Fuzzing against our own OpenAPI document (schemathesis): for every operation and every role,
generated requests (valid by the schema, and deliberately invalid ones) never get a 5xx, and
every answer matches the document: a documented status code, the documented content type, a
body valid against the documented schema, documented headers.

Bounded and reproducible: a fixed number of examples per operation, derandomized (the same
inputs on every run), no example database. The server runs on a real port in the test's event
loop; schemathesis (synchronous, `requests`) runs in a thread so the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.hardening.conftest import Serve, World

FUZZ_ROLES = ("anonymous", "admin", "buyer", "seller")
# Operations answering 2xx at least once per role: anonymous only reaches the public ones.
MIN_SUCCESSES = {"anonymous": 5, "admin": 20, "buyer": 8, "seller": 6}
POSITIVE_EXAMPLES = 20
NEGATIVE_EXAMPLES = 8
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _candidates(world: World) -> list[int]:
    """Path ids that exist (so requests reach handlers, not only 404s), plus a few that don't.
    The tokens the fuzzer authenticates with are left out: revoking them would end the run."""
    keep = {v for k, v in world.ids.items() if "token" not in k}
    spare = [world.ids["buyer_spare_token"], world.ids["seller_spare_token"]]
    return sorted({*keep, *spare, 987_654_321})


def _run_operation(
    strategy: st.SearchStrategy[Any], examples: int, checks: list[Any], label: str,
    base_url: str, headers: dict[str, str], failures: list[str], seen: Counter[str],
    protected: set[int], spare: int,
) -> None:
    reported: set[tuple[str, str]] = set()

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        run_checks = checks
        if case.method == "DELETE" and case.path_parameters.get("id") in protected:
            case.path_parameters["id"] = spare  # never revoke the token the role uses
        if case.headers and "Authorization" in case.headers:
            # The role under test decides the token; a negated Authorization header is replaced,
            # so the request is no longer invalid and must not be judged as such.
            del case.headers["Authorization"]
            run_checks = CONFORMANCE
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            seen[f"{case.operation.label} {response.status_code}"] += 1
            case.validate_response(response, checks=run_checks, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # collect, keep going: one report
            lines = str(exc).strip().splitlines()
            kind = " ".join(x.strip() for x in lines if x.strip().startswith(("- ST", "Received")))
            if (label, kind) not in reported and len(reported) < 40:
                reported.add((label, kind))
                failures.append(label + "\n" + "\n".join(lines[:16]))

    try:
        run()
    except Unsatisfiable:
        pass  # negative mode on an operation with nothing to get wrong (no body or parameters)


def _fuzz(
    spec: dict[str, Any], base_url: str, headers: dict[str, str], ids: list[int],
    protected: set[int], spare: int,
) -> tuple[list[str], Counter[str]]:
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    seen: Counter[str] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails loudly
        names = re.findall(r"\{(\w+)\}", operation.path)
        for mode, examples in ((GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
                               (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
            strategies = [operation.as_strategy(generation_mode=mode)]
            for value in ids if names else []:
                strategies.append(operation.as_strategy(
                    generation_mode=mode, path_parameters={n: value for n in names}))
            checks = CONFORMANCE
            if mode is GenerationMode.NEGATIVE:
                checks = [*CONFORMANCE, negative_data_rejection]
            _run_operation(st.one_of(strategies), examples, checks,
                           f"{operation.label} [{mode.value}]", base_url, headers, failures, seen,
                           protected, spare)
    return failures, seen


def spec_operations(spec: dict[str, Any]) -> list[str]:
    return [f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("role", FUZZ_ROLES)
async def test_fuzz_every_operation(serve: Serve, role: str) -> None:
    async with serve() as world:
        async with aiohttp.ClientSession() as http:
            async with http.get(world.url("/api/v1/openapi.json")) as r:
                spec = await r.json()
        failures, seen = await asyncio.to_thread(
            _fuzz, spec, world.base_url, world.headers(role), _candidates(world),
            world.live_tokens, world.ids["buyer_spare_token"],
        )
    assert not failures, "\n\n".join(failures)
    operations = {key.rsplit(" ", 1)[0] for key in seen}
    assert len(operations) == len(spec_operations(spec)), "every operation was exercised"
    ok = sorted(k for k in seen if k.endswith((" 200", " 201", " 204")))
    print(f"{role}: {sum(seen.values())} requests; 2xx on {len(ok)} operation/status pairs")
    # Each role reaches real data somewhere (not only 401/403/404 walls).
    assert len(ok) >= MIN_SUCCESSES[role], sorted(seen)
