"""Authentication (API keys, JWTs), authorisation (scopes) and abuse limits.

See docs/security.md for the threat model and the decisions behind this package.
"""
