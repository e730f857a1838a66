"""What this library raises itself. Driver errors are never wrapped: they reach the caller as
the driver raised them (an authentication failure after the retry budget is re-raised too)."""

from __future__ import annotations


class RotationClientError(Exception):
    """Base class of the errors this library raises (never one of a driver's)."""


class InvalidSecretError(RotationClientError, ValueError):
    """The secret's value is not what a connector needs. The message names the field, never a
    value."""


class InsecureConnectionError(RotationClientError):
    """The secret asks for plaintext (``"ssl": false``) and the application did not allow it, or a
    TLS setting cannot be honoured."""


class SecretUnavailableError(RotationClientError):
    """Secrets Manager did not return the secret (the cause is chained)."""
