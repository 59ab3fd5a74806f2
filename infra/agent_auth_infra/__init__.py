"""The AWS deployment of agent-auth (CDK), one construct per concern.

tables (DynamoDB, from agent_auth.schema), signing_key (KMS), functions and bundling (Lambda, from
agent_auth.routes), api (API Gateway), composed by stack and built into an app by application.build_app.
"""
