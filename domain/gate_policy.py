"""The pipeline gates' policy: how early before its window a change's gate says go, and
the integrations that ask it (a GitHub App's deployment protection rule: which
repository and environment deploy as which pre-approved standard change).

Kept apart from policy.py, which imports it; it checks references to the catalog and
the services given as plain values, so it needs nothing from policy.py."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.durations import Duration

REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatePolicy(_Strict):
    """A pipeline asks a change's gate before deploying: it says go this long before the
    approved window opens (deploys queue up; the window is when the change may run)."""

    early: Duration = Field(default=timedelta(minutes=30), ge=timedelta(0))


class GithubMapping(_Strict):
    """A deployment of `repository` to `environment` is filed as the standard change
    `standard` (a catalog id), for `services` (empty: the catalog entry's)."""

    repository: str
    environment: str = Field(min_length=1, max_length=255)
    standard: str
    services: list[str] = Field(default_factory=list, max_length=100)
    # The filed standard change's window, from the moment the deployment asks.
    window: Duration = Field(default=timedelta(hours=1), gt=timedelta(0), le=timedelta(days=7))

    @field_validator("repository")
    @classmethod
    def _owner_and_name(cls, value: str) -> str:
        if not REPOSITORY.match(value):
            raise ValueError(f"'{value}' is not a repository like owner/name")
        return value

    def matches(self, *, repository: str, environment: str) -> bool:
        """GitHub names repositories and environments case-insensitively."""
        return (self.repository.casefold(), self.environment.casefold()) == (
            repository.casefold(),
            environment.casefold(),
        )


class GithubIntegration(_Strict):
    """The GitHub App that asks the gates. The private key is read from a file and the
    webhook secret from an environment variable, so neither sits in the policy."""

    app_id: int = Field(ge=1)
    private_key_file: str = Field(min_length=1)
    webhook_secret_env: str = "GITHUB_WEBHOOK_SECRET"
    # GitHub's REST API (GitHub Enterprise Server: https://HOST/api/v3); answers go only here.
    api_url: str = Field(default="https://api.github.com", pattern=r"^https://[^/?#@\s]+(/[^?#\s]*)?$")
    mappings: list[GithubMapping] = Field(default_factory=list, max_length=200)

    @field_validator("webhook_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_VAR.match(value):
            raise ValueError(f"'{value}' is not an environment variable name")
        return value

    def mapping_for(self, *, repository: str, environment: str) -> GithubMapping | None:
        """The mapping a deployment of `repository` to `environment` falls under, if any."""
        return next(
            (m for m in self.mappings if m.matches(repository=repository, environment=environment)), None
        )


class Integrations(_Strict):
    """What asks the gates besides the REST API; each absent one is disabled."""

    github: GithubIntegration | None = None


def integration_problems(
    integrations: Integrations, *, catalog: Mapping[str, Sequence[str]], services: Sequence[str]
) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(key path, message) for each mapping naming an unknown standard change or service,
    a service outside its standard change's, or a repository and environment twice.
    `catalog` is each standard change's id and services (empty: any)."""
    github = integrations.github
    if github is None:
        return
    seen: set[tuple[str, str]] = set()
    for i, mapping in enumerate(github.mappings):
        loc: tuple[Any, ...] = ("integrations", "github", "mappings", i)
        pair = (mapping.repository.casefold(), mapping.environment.casefold())
        if pair in seen:
            yield (
                (*loc, "environment"),
                (f"'{mapping.repository}' deploying to '{mapping.environment}' is mapped twice"),
            )
        seen.add(pair)
        if mapping.standard not in catalog:
            known = ", ".join(sorted(catalog)) or "none"
            yield (*loc, "standard"), f"unknown standard change '{mapping.standard}' (catalog: {known})"
            continue
        allowed = catalog[mapping.standard]
        for j, service in enumerate(mapping.services):
            if service not in services:
                yield (*loc, "services", j), f"unknown service '{service}'"
            elif allowed and service not in allowed:
                yield (
                    (*loc, "services", j),
                    (f"'{mapping.standard}' is pre-approved only for {', '.join(allowed)}, not '{service}'"),
                )
