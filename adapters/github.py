"""GitHub, as a GitHub App: answering a deployment protection rule through the callback
URL GitHub gave us, with the installation's token (githubkit makes the App's JWT and
fetches and caches installation tokens).

Only https callback URLs on the configured API host are called: the URL arrives in a
webhook, and the installation token must never be sent anywhere else."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import jwt
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RequestFailed

from domain.deployments import CallbackResult

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0  # well inside the claim's lease
COMMIT_SECONDS = 4.0  # asked while GitHub waits for the webhook's answer (it gives up at 10 s)


class GithubDeployments:
    """The `DeploymentCallbacks` port on GitHub's REST API."""

    def __init__(
        self, *, app_id: int, private_key: str, api_url: str, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        self._api = httpx.URL(api_url.rstrip("/") + "/")
        self._github = GitHub(
            AppAuthStrategy(app_id, private_key),
            base_url=str(self._api),
            timeout=timeout,
            auto_retry=False,  # a failed answer is retried by its row, on a later pass
            http_cache=False,
            # Its own token cache: installation tokens live with this client, not the process.
            cache_strategy=MemCacheStrategy(),
        )

    @classmethod
    def from_key_file(cls, *, app_id: int, private_key_file: str, api_url: str) -> GithubDeployments:
        """Refuses to start on a key file that is missing or not an RSA private key, rather
        than failing every answer later."""
        try:
            private_key = Path(private_key_file).read_text()
            jwt.encode({"iss": str(app_id)}, private_key, algorithm="RS256")
        except (OSError, ValueError, jwt.PyJWTError) as error:
            raise ValueError(
                f"the GitHub App's private key {private_key_file} cannot be used: {type(error).__name__}"
            ) from None
        return cls(app_id=app_id, private_key=private_key, api_url=api_url)

    def allowed(self, url: str) -> bool:
        """An https URL on the configured API host (and under its path)."""
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            return False
        return (
            target.scheme == "https"
            and target.host == self._api.host
            and target.port == self._api.port
            and not target.userinfo
            and target.path.startswith(self._api.path)
        )

    async def answer(
        self, *, callback_url: str, installation_id: int | None, environment: str, state: str, comment: str
    ) -> tuple[CallbackResult, str]:
        if not self.allowed(callback_url):
            return CallbackResult.REFUSED, "callback URL is not on the configured GitHub API host"
        if installation_id is None:
            return CallbackResult.REFUSED, "the event named no App installation"
        github = self._github.with_auth(self._github.auth.as_installation(installation_id))
        body = {"environment_name": environment, "state": state, "comment": comment[:1000]}
        try:
            response = await github.arequest("POST", callback_url, json=body)
        except RequestFailed as failed:
            status = failed.response.status_code
            token = "/access_tokens" in str(failed.response.raw_request.url)
            if token or status >= 500 or status == 429:
                return CallbackResult.FAILED, f"HTTP {status}{' (installation token)' if token else ''}"
            return CallbackResult.REFUSED, f"HTTP {status}"
        except (GitHubException, httpx.HTTPError) as error:
            return CallbackResult.FAILED, type(error).__name__
        return CallbackResult.SENT, f"HTTP {response.status_code}"

    async def commit_message(self, *, repository: str, sha: str, installation_id: int | None) -> str | None:
        if installation_id is None:
            return None
        github = self._github.with_auth(self._github.auth.as_installation(installation_id))
        url = self._api.join(f"repos/{repository}/commits/{sha}")
        try:
            async with asyncio.timeout(COMMIT_SECONDS):
                response = await github.arequest("GET", str(url))
            message = response.json()["commit"]["message"]
        except (GitHubException, httpx.HTTPError, TimeoutError, ValueError, KeyError, TypeError) as error:
            log.info("the commit of a deployment could not be read: %s", type(error).__name__)
            return None
        return message[:2000] if isinstance(message, str) else None

    async def close(self) -> None:
        """Nothing pooled: githubkit opens a client per request outside a context."""
