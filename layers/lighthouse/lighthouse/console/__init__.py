"""The web console's server side: browser sessions (HttpOnly cookie + CSRF header), executions drawn
from their ASL definitions and histories, and the overview figures."""
