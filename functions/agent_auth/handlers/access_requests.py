"""POST /access-requests: an agent asks for just-in-time elevated access."""

from agent_auth import wiring
from agent_auth.web.function import ClientFunction

function = ClientFunction("/access-requests", wiring.from_environment(wiring.access_request_endpoint))
endpoint = function.container.get
lambda_handler = function.lambda_handler
