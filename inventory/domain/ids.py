"""Opaque global ids (`Type:uuid[:uuid]`, base64url) and pagination cursors."""
from __future__ import annotations

import base64
import binascii
from uuid import UUID


class MalformedId(ValueError):
    pass


def _b64decode(value: str) -> str:
    """Strict: any character outside the url-safe alphabet is an error."""
    padded = value + "=" * (-len(value) % 4)
    return base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()


def encode(type_name: str, *parts: UUID | str) -> str:
    raw = ":".join([type_name, *(str(p) for p in parts)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(global_id: str) -> tuple[str, tuple[UUID, ...]]:
    """Returns (type name, uuids); raises MalformedId for anything else."""
    try:
        raw = _b64decode(global_id)
        type_name, *parts = raw.split(":")
        if not type_name or not parts:
            raise ValueError
        return type_name, tuple(UUID(p) for p in parts)
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise MalformedId(f"malformed id {global_id!r}") from exc


def decode_as(expected_type: str, global_id: str, arity: int = 1) -> tuple[UUID, ...]:
    type_name, parts = decode(global_id)
    if type_name != expected_type or len(parts) != arity:
        raise MalformedId(f"id {global_id!r} is not a {expected_type} id")
    return parts


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(("c:" + value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = _b64decode(cursor)
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise MalformedId(f"malformed cursor {cursor!r}") from exc
    if not raw.startswith("c:"):
        raise MalformedId(f"malformed cursor {cursor!r}")
    return raw[2:]
