"""Kafka's principals as the broker holds them: SCRAM credentials and ACLs, kept in step with
what ``schemas/kafka_principals.py`` grants.

The admin (a super user) sends these requests. aiokafka has no call for SCRAM credentials, so
the two requests of KIP-554 (DescribeUserScramCredentials, AlterUserScramCredentials) are
declared here with aiokafka's own protocol types; the ACL requests are aiokafka's. The salted
password is computed here (PBKDF2, as RFC 5802 defines it): the password itself never
travels, not even to the broker.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from config.kafka_access import KafkaAccess
from schemas.kafka_principals import (
    ALLOW,
    OPERATION_CODES,
    PATTERN_CODES,
    RESOURCE_CODES,
    KafkaAcl,
    KafkaLogin,
)
from stack.errors import StackError

SCRAM_SHA_512 = 2  # the mechanism's code in KIP-554
SCRAM_ITERATIONS = 8192  # Kafka accepts 4096 to 16384 for SHA-512
_ANY = 1  # the wildcard of every ACL filter field


class _AlterScramResponse(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterScramStruct(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterScramResponse
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


_AlterScramStructs: TypeAlias = _AlterScramStruct


class _AlterScram(Request[_AlterScramStructs]):
    API_KEY = 51

    def __init__(self, deletions: list[tuple[Any, ...]], upsertions: list[tuple[Any, ...]]) -> None:
        self._deletions = deletions
        self._upsertions = upsertions

    def build(self, request_struct_class: type[_AlterScramStruct]) -> _AlterScramStruct:
        return request_struct_class(self._deletions, self._upsertions, {})


class _DescribeScramResponse(Response):
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                (
                    "credential_infos",
                    CompactArray(("mechanism", Int8), ("iterations", Int32), ("tags", TaggedFields)),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _DescribeScramStruct(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = _DescribeScramResponse
    SCHEMA = Schema(
        ("users", CompactArray(("name", CompactString("utf-8")), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


_DescribeScramStructs: TypeAlias = _DescribeScramStruct


class _DescribeScram(Request[_DescribeScramStructs]):
    API_KEY = 50

    def build(self, request_struct_class: type[_DescribeScramStruct]) -> _DescribeScramStruct:
        return request_struct_class(None, {})  # None: every user


def scram_upsertion(login: KafkaLogin, salt: bytes | None = None) -> tuple[Any, ...]:
    """One user's credential as the broker stores it: salt and salted password, not the password."""
    salt = salt if salt is not None else secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac("sha512", login.password.encode(), salt, SCRAM_ITERATIONS)
    return (login.username, SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted, {})


def principal_of(username: str) -> str:
    return f"User:{username}"


def _acl_key(resource_type: int, name: str, pattern: int, operation: int) -> tuple[int, str, int, int]:
    return (resource_type, name, pattern, operation)


def _wanted_keys(acls: Iterable[KafkaAcl]) -> set[tuple[int, str, int, int]]:
    return {
        _acl_key(RESOURCE_CODES[a.resource], a.name, PATTERN_CODES[a.pattern], OPERATION_CODES[a.operation])
        for a in acls
    }


def _acl_of(key: tuple[int, str, int, int]) -> KafkaAcl:
    """The grant a wire key stands for (the inverse of ``_wanted_keys``)."""
    resource_type, name, pattern, operation = key
    return KafkaAcl(_RESOURCES[resource_type], name, _OPERATIONS[operation], _PATTERNS[pattern])


_RESOURCES = {code: kind for kind, code in RESOURCE_CODES.items()}
_PATTERNS = {code: kind for kind, code in PATTERN_CODES.items()}
_OPERATIONS = {code: kind for kind, code in OPERATION_CODES.items()}


class KafkaIdentities:
    """The admin's session with the broker, for SCRAM users and ACLs."""

    def __init__(self, admin: KafkaAccess) -> None:
        self._client = AIOKafkaAdminClient(request_timeout_ms=15_000, **admin.client_options())

    async def __aenter__(self) -> KafkaIdentities:
        await self._client.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._client.close()

    async def scram_users(self) -> set[str]:
        """The users that hold a SCRAM-SHA-512 credential."""
        response = await self._client._send_request(_DescribeScram())
        if response.error_code:
            raise StackError(
                f"Kafka refused to list SCRAM users: {response.error_message} ({response.error_code})"
            )
        return {
            user
            for user, error, _msg, infos, _tags in response.results
            if not error and any(mechanism == SCRAM_SHA_512 for mechanism, _it, _t in infos)
        }

    async def set_passwords(self, logins: Iterable[KafkaLogin]) -> None:
        """Create or replace each user's credential (its sessions stay; new ones need the new one)."""
        upsertions = [scram_upsertion(login) for login in logins]
        if upsertions:
            await self._alter_scram([], upsertions)

    async def remove_users(self, usernames: Iterable[str]) -> None:
        deletions: list[tuple[Any, ...]] = [(name, SCRAM_SHA_512, {}) for name in usernames]
        if deletions:
            await self._alter_scram(deletions, [])

    async def _alter_scram(self, deletions: list[tuple[Any, ...]], upsertions: list[tuple[Any, ...]]) -> None:
        response = await self._client._send_request(_AlterScram(deletions, upsertions))
        failed = [(user, error, message) for user, error, message, _tags in response.results if error]
        if failed:
            detail = "; ".join(f"{user}: {message or error}" for user, error, message in failed)
            raise StackError(f"Kafka refused to change SCRAM credentials ({detail})")

    async def acls_of(self, username: str) -> set[tuple[int, str, int, int]]:
        """The principal's ALLOW ACLs, as (resource type, name, pattern type, operation)."""
        request = DescribeAclsRequest(_ANY, None, _ANY, principal_of(username), None, _ANY, _ANY)
        response = await self._client._send_request(request)
        if response.error_code:
            raise StackError(
                f"Kafka refused to describe ACLs: {response.error_message} ({response.error_code})"
            )
        return {
            _acl_key(resource_type, name, pattern, operation)
            for resource_type, name, pattern, acls in response.resources
            for _principal, _host, operation, permission in acls
            if permission == ALLOW
        }

    async def grant(self, username: str, acls: Iterable[KafkaAcl]) -> None:
        """Add ``acls`` to what ``username`` may do (Kafka keeps one copy of each)."""
        for resource_type, name, pattern, operation in sorted(_wanted_keys(acls)):
            response = await self._client._send_request(
                CreateAclsRequest(resource_type, name, pattern, principal_of(username), "*", operation, ALLOW)
            )
            for error, message in response.creation_responses:
                if error:
                    raise StackError(f"Kafka refused the ACL {operation} on {name} for {username}: {message}")

    async def withdraw(self, username: str, acls: Iterable[KafkaAcl]) -> None:
        """Remove ``acls`` from what ``username`` may do."""
        await self._withdraw_keys(username, _wanted_keys(acls))

    async def _withdraw_keys(self, username: str, keys: set[tuple[int, str, int, int]]) -> None:
        for resource_type, name, pattern, operation in sorted(keys):
            await self._client._send_request(
                DeleteAclsRequest(resource_type, name, pattern, principal_of(username), "*", operation, ALLOW)
            )

    async def grant_exactly(self, username: str, acls: Iterable[KafkaAcl]) -> tuple[int, int]:
        """Make ``username``'s ACLs exactly ``acls``: create what is missing, delete what is no
        longer granted; return (created, deleted)."""
        wanted = _wanted_keys(acls)
        current = await self.acls_of(username)
        await self.grant(username, [_acl_of(key) for key in wanted - current])
        await self._withdraw_keys(username, current - wanted)  # any grant, even one not ours
        return len(wanted - current), len(current - wanted)


async def provision_services(
    access: KafkaAccess, logins: dict[str, KafkaLogin], grants: dict[str, tuple[KafkaAcl, ...]]
) -> None:
    """As ``access`` (a super user): each service principal's credential, set again (so a
    changed password takes effect), and exactly its role's ACLs."""
    async with KafkaIdentities(access) as identities:
        await identities.set_passwords(logins.values())
        for principal, acls in grants.items():
            await identities.grant_exactly(logins[principal].username, acls)
