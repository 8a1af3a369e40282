"""The channels' test gateway (real routes, fake providers), reused for the security tests."""

from tests.channels.conftest import gateway, providers

__all__ = ["gateway", "providers"]
