"""The shapes of names, shared by the policy file's validation and the token path.

Kept free of pydantic so the token handler can check a client_id without importing the policy models
(that import alone cost ~68 ms of cold start; performance target 3).
"""

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
"""Agents, roles, audiences and approver groups. An agent's name is its client_id."""

SCOPE_PATTERN = r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$"
"""RFC 6749 §3.3 scope-token (NQCHAR), bounded."""

EMAIL_PATTERN = r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}$"
