"""cdk-nag (3.x) acknowledgments: each one names the rule finding and the reason it does not apply here.

cdk-nag 3 runs as a CDK validation plugin (Validations.of(app).add_plugins) and reports in the synth's
validation report; `NagSuppressions` is gone, acknowledgments go through Validations.of(scope).acknowledge.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """`rule` as cdk-nag prints it: "AwsSolutions-APIG3", or one finding: "AwsSolutions-IAM4[Policy::...]"."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{rule}", reason=reason))
