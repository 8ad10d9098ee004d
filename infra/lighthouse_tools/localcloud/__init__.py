"""The embedded local cloud: moto as the AWS endpoint plus a local runtime for the real handlers."""

from lighthouse_tools.localcloud.cloud import LocalCloud

__all__ = ["LocalCloud"]
