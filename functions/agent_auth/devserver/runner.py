"""Everything `agent-auth dev` starts: moto (in process, and as a server for the CLI), the tables and
key, the policy, the secrets, and the HTTP server. `DevEnvironment` is also what end-to-end tests run.

moto is entered one call at a time, in process and over HTTP alike (serialized_moto.py): the handlers
run on many threads, and DynamoDB's atomic conditional writes are what approvals and replay checks rely
on."""

from __future__ import annotations

import getpass
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent_auth import routes
from agent_auth.adapters.aws import AwsClients
from agent_auth.clock import OffsetClock, set_default_clock
from agent_auth.config import DEV_KEY_ALIAS_PREFIX, Settings
from agent_auth.devserver.local_aws import StreamPump, dev_routes
from agent_auth.devserver.oidc_provider import dev_issuer, oidc_routes
from agent_auth.devserver.pages import index_route, mailbox_for_browsers
from agent_auth.devserver.resources import create_resources
from agent_auth.devserver.serialized_moto import InProcessSerializer, LocalAwsEndpoint
from agent_auth.devserver.server import DevServer
from agent_auth.devserver.state_lock import StateLock
from agent_auth.operations import SECRET_METHODS, Target, apply_policy, rotate_secret
from agent_auth.policy.compiler import CompiledPolicy, load_policy
from agent_auth.wiring import operator_target

REGION = "us-east-1"
DEV_STATE = Path(".agent-auth") / "dev.json"
DEV_SOURCE_FAILURES = 10_000
DEV_UPSTREAM_CLIENT = "agent-auth-dev"
"""agent-auth's client id at the development OpenID provider."""
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass
class DevEnvironment:
    host: str = "127.0.0.1"
    port: int = 8000
    policy_file: str = "examples/policy.yaml"
    signing_alg: str = "RS256"
    state_dir: Path = field(default_factory=Path.cwd)
    settings: Settings | None = None
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    aws_endpoint_url: str = ""
    credentials_file: str | None = None
    """Where write_credentials put the secrets; `secret rotate --dev` keeps that file current."""
    _server: DevServer | None = None
    _moto_server: LocalAwsEndpoint | None = None
    _mock: Any = None
    _serializer: InProcessSerializer = field(default_factory=InProcessSerializer)
    _thread: threading.Thread | None = None
    _stream: StreamPump | None = None
    clock: OffsetClock = field(default_factory=OffsetClock)
    _lock: StateLock | None = None

    def start(self) -> None:
        policy = load_policy(self.policy_file)  # an invalid policy stops us before anything starts
        # Before anything else: a second server in this folder must not touch the first one's state.
        self._lock = StateLock(self.state_dir, DEV_STATE)
        self._lock.acquire()
        try:
            self._start(policy)
        except BaseException:
            self._lock.release()
            raise

    def _start(self, policy: CompiledPolicy) -> None:
        for name, value in {**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():
            os.environ[name] = value
        os.environ.pop("AWS_ENDPOINT_URL", None)
        from moto import mock_aws

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server would log every AWS call

        self._mock = mock_aws()
        self._mock.start()
        self._serializer.start()
        # The CLI's --dev reaches the same in-process moto state through this endpoint.
        self._moto_server = LocalAwsEndpoint("127.0.0.1")
        self._moto_server.start()
        self.aws_endpoint_url = self._moto_server.url

        set_default_clock(self.clock)
        # Binds now, so the issuer names the real port.
        extra_routes = dev_routes(REGION, self.clock)
        extra_routes["/_dev/mailbox"] = mailbox_for_browsers(extra_routes["/_dev/mailbox"])
        self._server = DevServer(self.host, self.port, extra_routes=extra_routes)
        self._server.routes["/"] = index_route(self._server.base_url)
        clients = AwsClients(REGION)
        self.settings = create_resources(
            clients.dynamodb,
            clients.kms,
            issuer=self._server.base_url,
            region=REGION,
            alg=self.signing_alg,
            ses=clients.ses,
            key_alias_prefix=DEV_KEY_ALIAS_PREFIX,
        )
        self.settings = self._mount_identity_provider(self._server, self.settings)
        os.environ.update(self.settings.to_env())
        self._stream = StreamPump(REGION, self.settings.requests_table)
        for path in routes.ACCESS_REQUESTS.paths:
            self._server.routes[path] = self._stream.after(self._server.routes[path])
        self._stream.start()
        target = self.target(clients)
        apply_policy(target, policy)
        for name, item in policy.agents.items():
            if item["auth_method"] in SECRET_METHODS:
                self.credentials[name] = rotate_secret(target, name)
        self._write_state()
        self._thread = threading.Thread(target=self._server.serve_forever, name="agent-auth-dev", daemon=True)
        self._thread.start()

    def _mount_identity_provider(self, server: DevServer, settings: Settings) -> Settings:
        """The development OpenID provider users sign in with, served by this same server; /authorize
        talks to it over HTTP with the relying-party code it uses with Cognito on AWS."""
        base = server.base_url
        secret = secrets.token_urlsafe(32)
        server.routes.update(
            oidc_routes(
                base,
                self.clock,
                client_id=DEV_UPSTREAM_CLIENT,
                client_secret=secret,
                redirect_uri=f"{base}/authorize/callback",
            )
        )
        return replace(
            settings,
            # Every request here comes from loopback: one address stands for every client and browser
            # on the machine, so the per-source limit would lock out all local work. Per agent, the
            # limits are those of AWS.
            auth_failures_per_source=DEV_SOURCE_FAILURES,
            upstream_issuer=dev_issuer(base),
            upstream_client_id=DEV_UPSTREAM_CLIENT,
            upstream_client_secret=secret,
        )

    def target(self, clients: AwsClients | None = None) -> Target:

        assert self.settings is not None
        clients = clients or AwsClients(REGION)
        env = self.settings.to_env()
        return operator_target(
            name="the development server",
            dynamodb=clients.dynamodb,
            table_names=lambda spec: env[spec.env_var],
            operator=f"{getpass.getuser()}@dev",
            issuer=self.settings.issuer,
            clock=self.clock,
        )

    @property
    def issuer(self) -> str:
        assert self.settings is not None
        return self.settings.issuer

    def _write_state(self) -> None:
        assert self.settings is not None
        path = self.state_dir / DEV_STATE
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "issuer": self.settings.issuer,
            "aws_endpoint_url": self.aws_endpoint_url,
            "region": REGION,
            "settings": self.settings.to_env(),
            "pid": os.getpid(),
            **({"credentials_file": self.credentials_file} if self.credentials_file else {}),
        }
        path.write_text(json.dumps(state, indent=2) + "\n")

    def write_credentials(self, path: str) -> None:
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.touch(mode=0o600)
        file.write_text(json.dumps(self.credentials, indent=2) + "\n")
        self.credentials_file = str(file.resolve())
        self._write_state()

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._moto_server is not None:
            self._moto_server.stop()
        self._serializer.stop()
        if self._mock is not None:
            self._mock.stop()
        if self._lock is not None and self._lock.held:  # only the folder's owner removes its state
            (self.state_dir / DEV_STATE).unlink(missing_ok=True)
            self._lock.release()

    def wait(self) -> None:
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)
