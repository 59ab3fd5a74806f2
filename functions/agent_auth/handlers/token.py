"""POST /token."""

from agent_auth import wiring
from agent_auth.web.function import ClientFunction

function = ClientFunction("/token", wiring.from_environment(wiring.token_endpoint))
endpoint = function.container.get
lambda_handler = function.lambda_handler
