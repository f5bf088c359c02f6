"""The REST API's tokens: made once (only the sha256 is kept), listed, revoked, and
checked on each call by looking the hash up (constant-time compared)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from domain.api_tokens import TOKEN_BYTES, TOKEN_PREFIX, due_touch, looks_like_token, name_problem
from storage.models import ApiTokenRow, feed_token_hash
from storage.sql import SqlStore


class TokenNameTaken(Exception):
    """A token (live or revoked) already has this name: names stay unique for the audit."""


class BadTokenName(ValueError):
    pass


@dataclass(frozen=True)
class ApiTokenInfo:
    """What `api-token list` shows: never the token, nor its hash."""

    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokens(SqlStore):
    async def create(self, *, name: str, now: datetime) -> str:
        """A new token for `name`, returned once: only its hash is stored."""
        problem = name_problem(name)
        if problem:
            raise BadTokenName(problem)
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        try:
            async with self._sessions() as session, session.begin():
                taken = await session.execute(
                    sa.select(col(ApiTokenRow.id)).where(col(ApiTokenRow.name) == name)
                )
                if taken.first() is not None:
                    raise TokenNameTaken(name)
                session.add(ApiTokenRow(name=name, token_hash=feed_token_hash(token), created_at=now))
        except IntegrityError:  # made at the same moment elsewhere
            raise TokenNameTaken(name) from None
        return token

    async def list(self) -> list[ApiTokenInfo]:
        async with self._reads() as session:
            query = sa.select(ApiTokenRow).order_by(col(ApiTokenRow.name))
            rows = (await session.execute(query)).scalars().all()
            return [ApiTokenInfo(r.name, r.created_at, r.last_used_at, r.revoked_at) for r in rows]

    async def revoke(self, *, name: str, now: datetime) -> bool:
        """Revoke the live token named `name`; False when there is none."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                sa.update(ApiTokenRow)
                .where(col(ApiTokenRow.name) == name, col(ApiTokenRow.revoked_at).is_(None))
                .values(revoked_at=now)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def authenticate(self, token: str, *, now: datetime) -> str | None:
        """The name of the live token `token` is, or None; its last use written at most
        once a minute."""
        if not looks_like_token(token):
            return None
        digest = feed_token_hash(token)
        query = sa.select(
            col(ApiTokenRow.id),
            col(ApiTokenRow.token_hash),
            col(ApiTokenRow.name),
            col(ApiTokenRow.last_used_at),
        ).where(col(ApiTokenRow.token_hash) == digest, col(ApiTokenRow.revoked_at).is_(None))
        async with self._reads() as session:
            row = (await session.execute(query)).first()
        if row is None or not hmac.compare_digest(str(row.token_hash), digest):
            return None
        if due_touch(row.last_used_at, now):
            async with self._sessions() as session, session.begin():
                await session.execute(
                    sa.update(ApiTokenRow).where(col(ApiTokenRow.id) == row.id).values(last_used_at=now)
                )
        return str(row.name)
