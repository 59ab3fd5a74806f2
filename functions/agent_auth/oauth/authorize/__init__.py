"""Delegated access: the authorization endpoint (RFC 6749 §4.1, RFC 7636, RFC 8707, RFC 9207)."""
