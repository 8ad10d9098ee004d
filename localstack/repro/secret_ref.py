"""MiniStack: !Ref of an AWS::SecretsManager::Secret gives the secret's name; CloudFormation gives its ARN.

python secret_ref.py http://127.0.0.1:4566
"""

from __future__ import annotations

import json
import sys
import time

import boto3

endpoint = sys.argv[1]
options = {
    "endpoint_url": endpoint,
    "region_name": "us-east-1",
    "aws_access_key_id": "test",
    "aws_secret_access_key": "test",
}
cloudformation = boto3.client("cloudformation", **options)
template = {
    "Resources": {
        "Secret": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {"GenerateSecretString": {"PasswordLength": 32}},
        }
    },
    "Outputs": {"Ref": {"Value": {"Ref": "Secret"}}},
}
cloudformation.create_stack(StackName="secret-ref", TemplateBody=json.dumps(template))
for _ in range(50):
    stack = cloudformation.describe_stacks(StackName="secret-ref")["Stacks"][0]
    if stack["StackStatus"].endswith("COMPLETE"):
        break
    time.sleep(0.2)
print(stack["StackStatus"], stack["Outputs"][0]["OutputValue"])
