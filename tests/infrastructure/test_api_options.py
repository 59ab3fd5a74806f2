"""Per-route limits, and what context chooses for the API: stage name, WAF, custom domain."""

from __future__ import annotations

import json
from typing import Any

from agent_auth import routes
from agent_auth_infra.api import ROUTE_THROTTLES, STAGE_THROTTLE, WAF_RATE_PER_IP, WAF_TOKEN_RATE_PER_IP

from .conftest import FULL_CONTEXT
from .synthesis import Synthesized
from .test_api import stage


def method_settings(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {s["ResourcePath"]: s for s in stage(synth)["MethodSettings"]}


def test_every_limited_route_has_its_limit_below_the_stage(synth: Synthesized) -> None:
    settings = method_settings(synth)
    for spec, throttle in ROUTE_THROTTLES.items():
        for path in spec.paths:
            route = settings["/" + path.replace("/", "~1")]
            assert route["ThrottlingRateLimit"] == throttle.rate, path
            assert route["ThrottlingBurstLimit"] == throttle.burst, path
            assert throttle.rate <= STAGE_THROTTLE.rate and throttle.burst <= STAGE_THROTTLE.burst
            # And the override keeps the stage's logging rules (it replaces them)
            assert route["DataTraceEnabled"] is False and route["LoggingLevel"] == "ERROR"
    # Sending email is the scarcest: access requests are limited hardest
    assert ROUTE_THROTTLES[routes.ACCESS_REQUESTS].rate == min(t.rate for t in ROUTE_THROTTLES.values())


def test_no_waf_and_no_domain_by_default(synth: Synthesized) -> None:
    assert synth.of_type("AWS::WAFv2::WebACL") == {}
    assert synth.of_type("AWS::ApiGateway::DomainName") == {}
    (api,) = synth.of_type("AWS::ApiGateway::RestApi").values()
    assert api["Properties"].get("DisableExecuteApiEndpoint", False) is False


def test_stage_name_comes_from_context(full: Synthesized) -> None:
    assert stage(full)["StageName"] == FULL_CONTEXT["stage"]


def test_waf_limits_each_source_address_and_guards_the_stage(full: Synthesized) -> None:
    # Given context waf: true
    ((acl_id, acl),) = full.of_type("AWS::WAFv2::WebACL").items()
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}

    # Then each rule blocks one source address (the connection's, not a forwarded-for header) beyond
    # its rate, the token endpoint tighter than everything
    rules = {r["Name"]: r for r in props["Rules"]}
    for rule in rules.values():
        assert rule["Action"] == {"Block": {}}
        assert rule["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
        assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
    token = rules["token-per-ip"]["Statement"]["RateBasedStatement"]
    assert token["Limit"] == WAF_TOKEN_RATE_PER_IP < WAF_RATE_PER_IP
    match = token["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["SearchString"] == "/token" and match["PositionalConstraint"] == "ENDS_WITH"
    assert rules["any-per-ip"]["Statement"]["RateBasedStatement"]["Limit"] == WAF_RATE_PER_IP

    # And the ACL is associated with the stage
    (association,) = full.of_type("AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    (stage_id,) = full.of_type("AWS::ApiGateway::Stage")
    assert stage_id in json.dumps(association["Properties"]["ResourceArn"])


def test_custom_domain_serves_the_api_at_its_root_over_tls_1_2(full: Synthesized) -> None:
    # Given context domainName, certificateArn and hostedZoneId
    ((domain_id, domain),) = full.of_type("AWS::ApiGateway::DomainName").items()
    props = domain["Properties"]
    assert props["DomainName"] == FULL_CONTEXT["domainName"]
    assert props["RegionalCertificateArn"] == FULL_CONTEXT["certificateArn"]
    assert props["SecurityPolicy"] == "TLS_1_2"
    assert props["EndpointConfiguration"] == {"Types": ["REGIONAL"]}

    # Then the API is mapped at the root (the functions see the same paths), the execute-api endpoint is
    # off (one spelling of the issuer), the issuer is the domain, and the zone gets an alias record
    (mapping,) = full.of_type("AWS::ApiGateway::BasePathMapping").values()
    assert mapping["Properties"]["DomainName"] == {"Ref": domain_id}
    assert "BasePath" not in mapping["Properties"]
    (api,) = full.of_type("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["DisableExecuteApiEndpoint"] is True
    for spec in routes.ALL_FUNCTIONS:
        assert full.environment(full.function_id(spec))["ISSUER"] == f"https://{FULL_CONTEXT['domainName']}"
    (record,) = full.of_type("AWS::Route53::RecordSet").values()
    assert record["Properties"]["Name"] == f"{FULL_CONTEXT['domainName']}."
    assert record["Properties"]["Type"] == "A"
    assert record["Properties"]["HostedZoneId"] == FULL_CONTEXT["hostedZoneId"]


def test_the_full_app_passes_every_check(full: Synthesized) -> None:
    # Given every option on / Then cdk-nag and CloudFormation validation find nothing unacknowledged
    assert full.violations() == []
    assert full.error is None
