"""The token lifecycle after issue: introspection (RFC 7662) and revocation (RFC 7009)."""
