"""What operators do (apply, rotate, audit, requests, grants, consents, revoke), on ports; the CLI is
only the glue.

Every change is audited in the same transaction as the change itself, naming the operator.
"""

from agent_auth.operations.audit import read_audit
from agent_auth.operations.consents import list_consents, revoke_consent
from agent_auth.operations.policy import ApplyResult, apply_policy
from agent_auth.operations.requests import list_grants, list_requests, revoke_grant
from agent_auth.operations.secrets import rotate_secret
from agent_auth.operations.target import OperationFailed, Target
from agent_auth.records import SECRET_METHODS

__all__ = [
    "SECRET_METHODS",
    "ApplyResult",
    "OperationFailed",
    "Target",
    "apply_policy",
    "list_consents",
    "list_grants",
    "list_requests",
    "read_audit",
    "revoke_consent",
    "revoke_grant",
    "rotate_secret",
]
