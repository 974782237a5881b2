"""schemathesis with every check, as admin, buyer, seller and anonymous, against a live instance.

    .venv/bin/python scripts/schemathesis_live.py            # starts `marketplace up` itself
    .venv/bin/python scripts/schemathesis_live.py --url http://127.0.0.1:8080 --admin-token T

Without --url it starts `marketplace up` (embedded PostgreSQL and Valkey, demo data) in a
temporary DATA_DIR on a free port with the rate limit off (schemathesis sends thousands of
requests a minute) and stops it at the end. It then creates a buyer, a seller and an admin
account through the API and runs `st run <spec> --checks all` once per role (no credential for
anonymous). The role tokens are made after a few hundred spare tokens, so that the token ids
schemathesis tries in `DELETE /api/v1/tokens/{id}` (small numbers first) revoke spare tokens,
not the one the run authenticates with. Exit status 0 only when every run reports no failure.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPARE_TOKENS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(base: str, method: str, path: str, token: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _wait_ready(base: str, within: float = 300.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/health/ready", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise SystemExit(f"{base} did not become ready within {within:.0f} s")


def _role_tokens(base: str, admin: str) -> dict[str, str]:
    for i in range(SPARE_TOKENS):
        _call(base, "POST", "/api/v1/tokens", admin, {"role": "buyer", "name": f"spare {i}"})
    seller = _call(base, "POST", "/api/v1/sellers", admin, {
        "name": "Schemathesis Seller Ltd", "summary": "Python services on AWS for government",
        "categories": [], "skills": ["python", "aws"], "locations": ["London"],
    })
    made = {
        "buyer": _call(base, "POST", "/api/v1/tokens", admin, {
            "role": "buyer", "name": "Schemathesis buyer", "organisation": "Schemathesis Office"}),
        "seller": _call(base, "POST", "/api/v1/tokens", admin, {
            "role": "seller", "name": "Schemathesis seller", "seller_id": seller["id"]}),
        "admin": _call(base, "POST", "/api/v1/tokens", admin, {
            "role": "admin", "name": "Schemathesis admin"}),
    }
    return {role: answer["token"] for role, answer in made.items()}


def _run(base: str, role: str, token: str | None, examples: int, report_dir: Path) -> int:
    command = [
        str(BIN / "st"), "run", base + "/api/v1/openapi.json", "--checks", "all",
        "--max-examples", str(examples), "--seed", "15", "--continue-on-failure",
        "--report", "junit", "--report-junit-path", str(report_dir / f"{role}.xml"),
    ]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    print(f"\n=== schemathesis as {role} ===", flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running instance (default: start `marketplace up`)")
    parser.add_argument("--admin-token", help="its admin token (with --url)")
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--roles", default="admin,buyer,seller,anonymous")
    parser.add_argument("--report-dir", default=str(ROOT / "schemathesis-report"))
    args = parser.parse_args()
    report_dir = Path(args.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    server: subprocess.Popen[bytes] | None = None
    tmp = tempfile.TemporaryDirectory(prefix="schemathesis-")
    try:
        if args.url:
            if not args.admin_token:
                raise SystemExit("--url needs --admin-token")
            base, admin = args.url.rstrip("/"), args.admin_token
        else:
            port = _free_port()
            base, admin = f"http://127.0.0.1:{port}", "adm_" + secrets.token_urlsafe(32)
            env = {**os.environ, "MARKETPLACE_DATA_DIR": tmp.name, "MARKETPLACE_PORT": str(port),
                   "MARKETPLACE_ADMIN_TOKEN": admin, "MARKETPLACE_RATE_LIMIT": "off"}
            log = open(Path(tmp.name) / "server.log", "wb")
            server = subprocess.Popen([str(BIN / "marketplace"), "up"], cwd=ROOT, env=env,
                                      stdout=log, stderr=subprocess.STDOUT)
        _wait_ready(base)
        tokens: dict[str, str | None] = {"anonymous": None, **_role_tokens(base, admin)}
        results = {
            role: _run(base, role, tokens[role], args.max_examples, report_dir)
            for role in args.roles.split(",")
        }
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
        tmp.cleanup()
    print("\n" + "\n".join(f"{role}: {'no failures' if code == 0 else f'FAILED (exit {code})'}"
                           for role, code in results.items()))
    return 0 if all(code == 0 for code in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
