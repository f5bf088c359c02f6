"""An HTTPS fake of the GitHub REST API parts a GitHub App's deployment protection rule
uses: installation tokens (`POST /app/installations/{id}/access_tokens`, the App's JWT
checked against its public key) and the deployment protection callbacks
(`POST /repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule`), recorded.

TLS with the throwaway CA of the PagerDuty fake: point ``SSL_CERT_FILE`` at ``ca_file``.

    fake = GithubFake()
    await fake.start()
    ... GithubDeployments(app_id=fake.app_id, private_key=fake.private_key, api_url=fake.base_url) ...
    fake.callbacks  # [Callback(repository, run_id, body, token)]
    fake.fail_with(500, times=1)  # the next callback answers 500
    await fake.stop()
"""

from __future__ import annotations

import json
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.pagerduty_fake import tls_certificates

TOKEN = "ghs_installation_token_for_tests"
_KEY: str | None = None


def app_private_key() -> str:
    """An RSA key for the App (PEM), made once per process."""
    global _KEY
    if _KEY is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _KEY = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    return _KEY


@dataclass(frozen=True)
class Callback:
    repository: str
    run_id: int
    body: dict[str, Any]
    authorization: str


@dataclass
class GithubFake:
    app_id: int = 4242
    callbacks: list[Callback] = field(default_factory=list)
    tokens_issued: list[int] = field(default_factory=list)  # installation ids
    # (run id, environment) answered already: GitHub refuses a second answer with 422.
    answered: set[tuple[int, str]] = field(default_factory=set)
    attempts: list[tuple[int, str]] = field(default_factory=list)  # every answer sent, refused or not
    commits: dict[str, str] = field(default_factory=dict)  # sha -> message, served to the App

    def __post_init__(self) -> None:
        self.ca_file, self._cert_file, self._key_file = tls_certificates()
        self.private_key = app_private_key()
        self._public_key = serialization.load_pem_private_key(self.private_key.encode(), None).public_key()
        self._faults: deque[int] = deque()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert_file, self._key_file)
        app = web.Application()
        app.router.add_post("/app/installations/{installation}/access_tokens", self._token)
        app.router.add_post(
            "/repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule", self._callback
        )
        app.router.add_get("/repos/{owner}/{repo}/commits/{sha}", self._commit)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        assert self._port is not None, "GitHub fake not started"
        return f"https://127.0.0.1:{self._port}"

    def callback_url(self, repository: str, run_id: int) -> str:
        return f"{self.base_url}/repos/{repository}/actions/runs/{run_id}/deployment_protection_rule"

    def fail_with(self, status: int, *, times: int = 1) -> None:
        """The next `times` callbacks answer `status` (and are not recorded)."""
        self._faults.extend([status] * times)

    def states(self) -> list[str]:
        return [callback.body["state"] for callback in self.callbacks]

    async def _token(self, request: web.Request) -> web.Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(bearer, self._public_key, algorithms=["RS256"])  # type: ignore[arg-type]
        except jwt.PyJWTError:
            return web.json_response({"message": "A JSON web token could not be decoded"}, status=401)
        if str(claims.get("iss")) != str(self.app_id):
            return web.json_response({"message": "Integration not found"}, status=401)
        self.tokens_issued.append(int(request.match_info["installation"]))
        return web.json_response({"token": TOKEN, "expires_at": "2099-01-01T00:00:00Z"}, status=201)

    async def _commit(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") not in (f"token {TOKEN}", f"Bearer {TOKEN}"):
            return web.json_response({"message": "Bad credentials"}, status=401)
        sha = request.match_info["sha"]
        if sha not in self.commits:
            return web.json_response({"message": "No commit found for SHA"}, status=422)
        return web.json_response({"sha": sha, "commit": {"message": self.commits[sha]}})

    async def _callback(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        if authorization not in (f"token {TOKEN}", f"Bearer {TOKEN}"):
            return web.json_response({"message": "Bad credentials"}, status=401)
        if self._faults:
            return web.json_response({"message": "fault"}, status=self._faults.popleft())
        body = json.loads(await request.read())
        run_id = int(request.match_info["run"])
        key = (run_id, str(body.get("environment_name")))
        self.attempts.append(key)
        if key in self.answered:
            return web.json_response(
                {"message": "No pending deployment requests to approve or reject"}, status=422
            )
        self.answered.add(key)
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        self.callbacks.append(Callback(repository, run_id, body, authorization))
        return web.Response(status=204)
