"""The API client lives in the layer (`lighthouse.apiclient`): the MCP function uses it too."""

from lighthouse.apiclient import RENEW_MARGIN_SECONDS, ApiError, LighthouseClient

__all__ = ["RENEW_MARGIN_SECONDS", "ApiError", "LighthouseClient"]
