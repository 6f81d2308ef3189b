"""Which role may call which RPC: one rule for every method of every vtc.v1
service, checked once for every call by AuthInterceptor, before the handler runs.

A method without a rule is refused to everyone. docs/auth.md shows this table;
tests/unit/test_access_policy.py checks the table, this policy and the proto
descriptors against each other, so a new RPC without a rule fails the suite.

The policy says who may call an RPC at all; which tenant a call may touch is
the domain's job (services/auth_svc/access.py for keys; every video call acts
for the caller's own tenant, a service's for the tenant it names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.shared.errors import PermissionDenied
from services.shared.principal import PLATFORM_ROLE_TENANT, Principal, Role

_READ, _WRITE, _ADMIN, _OPERATOR, _SERVICE = (Role.VIDEOS_READ, Role.VIDEOS_WRITE, Role.ADMIN, Role.OPERATOR,
                                              Role.SERVICE)


@dataclass(frozen=True)
class AccessRule:
    roles: frozenset[Role] = frozenset()
    public: bool = False  # no token needed

    def allows(self, principal: Principal) -> bool:
        return self.public or not self.roles.isdisjoint(principal.roles)


ANYONE = AccessRule(public=True)


def only(*roles: Role) -> AccessRule:
    return AccessRule(roles=frozenset(roles))


ACCESS_POLICY: Mapping[str, AccessRule] = {
    "/vtc.v1.AuthService/IssueToken": ANYONE,  # getting a token, and the keys to check one,
    "/vtc.v1.AuthService/GetJwks": ANYONE,     # cannot need a token
    "/vtc.v1.AuthService/CreateTenant": only(_OPERATOR),
    "/vtc.v1.AuthService/CreateApiKey": only(_OPERATOR, _ADMIN),
    "/vtc.v1.AuthService/ListApiKeys": only(_OPERATOR, _ADMIN),
    "/vtc.v1.AuthService/RevokeApiKey": only(_OPERATOR, _ADMIN),
    "/vtc.v1.MetadataService/RegisterVideo": only(_SERVICE),
    "/vtc.v1.MetadataService/GetVideo": only(_READ, _ADMIN),
    "/vtc.v1.MetadataService/ListVideos": only(_READ, _ADMIN),
    "/vtc.v1.MetadataService/DeleteVideo": only(_WRITE, _ADMIN),
    "/vtc.v1.MetadataService/GetJob": only(_READ, _ADMIN),
    "/vtc.v1.MetadataService/WatchJob": only(_READ, _ADMIN),
    "/vtc.v1.MetadataService/CancelJob": only(_WRITE, _ADMIN),
    "/vtc.v1.MetadataService/DownloadRendition": only(_READ, _ADMIN),
    "/vtc.v1.MetadataService/GetDownloadUrl": only(_READ, _ADMIN),
    "/vtc.v1.MetadataService/Retranscode": only(_WRITE, _ADMIN),
    "/vtc.v1.MetadataService/RetryJob": only(_WRITE, _ADMIN),
    "/vtc.v1.ProcessService/ListProfiles": only(_READ, _WRITE, _ADMIN, _SERVICE),  # upload checks profiles
    "/vtc.v1.UploadService/Upload": only(_WRITE, _ADMIN),
}


def access_rule(method: str) -> AccessRule | None:
    """The rule for a full method name (`/vtc.v1.UploadService/Upload`); None: no rule."""
    return ACCESS_POLICY.get(method)


def check_access(method: str, principal: Principal) -> None:
    """PermissionDenied unless the policy lets this principal call `method`."""
    rule = access_rule(method)
    if rule is None:
        raise PermissionDenied(f"{method} has no access rule, so nobody may call it")
    if not rule.allows(principal):
        raise PermissionDenied(_denial(method, rule, principal))


def _denial(method: str, rule: AccessRule, principal: Principal) -> str:
    name = method.rsplit("/", 1)[-1]
    needed = " or ".join(f"'{role}'" for role in sorted(rule.roles))
    held = ", ".join(f"'{role}'" for role in sorted(principal.roles)) or "no role"
    message = f"{name} needs the {needed} scope; this token has {held}"
    misplaced = sorted(role for role in rule.roles if role in PLATFORM_ROLE_TENANT
                       and role.value in principal.scopes and role not in principal.roles)
    for role in misplaced:
        message += f" ('{role}' counts only in the {PLATFORM_ROLE_TENANT[role]!r} tenant)"
    return message
