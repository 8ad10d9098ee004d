"""Creates the template's resources in the emulator through the service APIs.

moto's CloudFormation cannot create everything a SAM template expands to, so each resource type
is created with its own API call. The template stays the only list of resources.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lighthouse_tools.localcloud import websocket
from lighthouse_tools.localcloud.websocket import WebSocketSpec
from lighthouse_tools.template import PROJECT_ROOT, Resolver, TemplateError

# IoT Core's authorizer (and its invoke permission): locally mosquitto's dynamic security authorizes.
# Alarms and the dashboard: locally the console's overview (GET /overview) shows the same figures.
NOT_EMULATED = {
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::Serverless::LayerVersion",
    "AWS::IoT::Authorizer",
    "AWS::Lambda::Permission",
    # Flags are read from the event store locally (moto has no AppConfig data plane): see lighthouse.flags.
    "AWS::AppConfig::Application",
    "AWS::AppConfig::Environment",
    "AWS::AppConfig::ConfigurationProfile",
    "AWS::AppConfig::DeploymentStrategy",
    "AWS::AppConfig::HostedConfigurationVersion",
    "AWS::AppConfig::Deployment",
}


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    timeout: int
    memory_mb: int
    environment: dict[str, str]
    events: dict[str, dict[str, Any]]
    function_url: bool = False  # served at a URL of its own (FunctionUrlConfig)


@dataclass
class QueueSource:
    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    # ScalingConfig.MaximumConcurrency: batches delivered at once (Lambda scales pollers out too).
    concurrency: int = 1


@dataclass
class StreamSource:
    function: str
    stream_arn: str
    starting_position: str
    batch_size: int
    maximum_retry_attempts: int
    report_failures: bool
    on_failure_queue_url: str | None
    filters: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Schedule:
    source: str
    expression: str
    function: str | None = None
    state_machine_arn: str | None = None
    input: str = "{}"


@dataclass
class Stack:
    name: str
    region: str
    account: str
    resolver: Resolver
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    queue_sources: list[QueueSource] = field(default_factory=list)
    stream_sources: list[StreamSource] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    api_routes: list[tuple[str, str, str]] = field(default_factory=list)  # (function, method, path)
    skipped: list[str] = field(default_factory=list)
    topic_rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> TopicRulePayload
    outputs: dict[str, str] = field(default_factory=dict)
    websocket: WebSocketSpec | None = None  # served by localcloud.websocket

    def api_function(self) -> FunctionSpec:
        """The function behind most of the API's routes (the Chalice app; ConsoleFunction serves /console)."""
        counts = Counter(function for function, _, _ in self.api_routes)
        if not counts:
            raise TemplateError("no function has Api events")
        return self.functions[counts.most_common(1)[0][0]]


def _generate_secret(spec: dict[str, Any]) -> str:
    length = int(spec.get("PasswordLength", 32))
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    return "".join(secrets.choice(alphabet) for _ in range(length))


class Provisioner:
    def __init__(
        self,
        template: dict[str, Any],
        clients: dict[str, Any],
        *,
        stack_name: str = "lighthouse",
        region: str = "us-east-1",
        account: str = "123456789012",
        parameter_overrides: dict[str, str] | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self._template = template
        self._clients = clients
        self._time_scale = time_scale
        parameters = {
            name: str(spec["Default"]) for name, spec in template.get("Parameters", {}).items() if "Default" in spec
        }
        unknown = set(parameter_overrides or {}) - set(template.get("Parameters", {}))
        if unknown:
            raise TemplateError(f"unknown template parameters: {sorted(unknown)}")
        parameters.update(parameter_overrides or {})
        parameters.update(
            {
                "AWS::StackName": stack_name,
                "AWS::Region": region,
                "AWS::AccountId": account,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            }
        )
        self.stack = Stack(stack_name, region, account, Resolver(parameters))
        for condition, expression in self._template.get("Conditions", {}).items():
            self.stack.resolver.conditions[condition] = bool(self.stack.resolver.resolve(expression))
        self._queue_urls_by_arn: dict[str, str] = {}

    def provision(self) -> Stack:
        resources: dict[str, dict[str, Any]] = dict(self._template["Resources"])
        pending = dict(resources)
        while pending:
            errors: dict[str, str] = {}
            progressed = False
            for logical_id, resource in list(pending.items()):
                try:
                    self._create(logical_id, resource)
                except TemplateError as error:
                    errors[logical_id] = str(error)
                    continue
                del pending[logical_id]
                progressed = True
            if not progressed:
                raise TemplateError(f"cannot provision: {errors}")
        self._wire_event_sources()
        for name, output in self._template.get("Outputs", {}).items():
            try:
                self.stack.outputs[name] = str(self.stack.resolver.resolve(output["Value"]))
            except TemplateError:
                continue  # e.g. the API Gateway URL, which the local cloud replaces with its own
        return self.stack

    # ---- one resource -------------------------------------------------------------------------

    def _name(self, logical_id: str) -> str:
        return f"{self.stack.name}-{logical_id}"

    def _create(self, logical_id: str, resource: dict[str, Any]) -> None:
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if "Condition" in resource and not self.stack.resolver.conditions[resource["Condition"]]:
            self.stack.skipped.append(f"{logical_id} (condition {resource['Condition']} is false)")
            return
        if kind == "AWS::IoT::TopicRule":
            # Run by the local rule runner beside mosquitto (localcloud/rules.py), into the same queue.
            payload = self.stack.resolver.resolve(properties["TopicRulePayload"])
            self.stack.topic_rules[logical_id] = payload
            self.stack.resolver.physical_ids[logical_id] = self._name(logical_id)
            return
        if kind.startswith("AWS::ApiGatewayV2::"):
            props = self.stack.resolver.resolve(properties)
            physical, self.stack.websocket = websocket.provision(
                kind, logical_id, props, self.stack.websocket, self.stack.functions
            )
            self.stack.resolver.physical_ids[logical_id] = physical
            return
        if kind in NOT_EMULATED:
            self.stack.skipped.append(f"{logical_id} ({kind})")
            self.stack.resolver.physical_ids[logical_id] = self._name(logical_id)
            return
        creator = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::S3::Bucket": self._bucket,
            "AWS::Serverless::Function": self._function,
            "AWS::Serverless::StateMachine": self._state_machine,
            "AWS::IAM::Role": self._role,
        }.get(kind)
        if creator is None:
            raise TemplateError(f"{logical_id}: resource type {kind} is not supported by the local cloud")
        creator(logical_id, properties)

    def _table(self, logical_id: str, properties: dict[str, Any]) -> None:
        props = self.stack.resolver.resolve(properties)
        name = props.get("TableName") or self._name(logical_id)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "StreamSpecification" in props:
            kwargs["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": props["StreamSpecification"]["StreamViewType"],
            }
        if "GlobalSecondaryIndexes" in props:
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "ProvisionedThroughput" in props:
            kwargs["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        dynamodb = self._clients["dynamodb"]
        description = dynamodb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        resolver = self.stack.resolver
        resolver.physical_ids[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = description["TableArn"]
        if "LatestStreamArn" in description:
            resolver.attributes[(logical_id, "StreamArn")] = description["LatestStreamArn"]

    def _queue(self, logical_id: str, properties: dict[str, Any]) -> None:
        props = self.stack.resolver.resolve(properties)
        name = props.get("QueueName") or self._name(logical_id)
        attributes: dict[str, str] = {}
        for key in (
            "DelaySeconds",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
        ):
            if key in props:
                attributes[key] = str(props[key])
        if "VisibilityTimeout" in props:
            attributes["VisibilityTimeout"] = str(max(1, round(int(props["VisibilityTimeout"]) * self._time_scale)))
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": props["RedrivePolicy"]["deadLetterTargetArn"],
                    "maxReceiveCount": int(props["RedrivePolicy"]["maxReceiveCount"]),
                }
            )
        if props.get("FifoQueue"):
            attributes["FifoQueue"] = "true"
        sqs = self._clients["sqs"]
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        resolver = self.stack.resolver
        resolver.physical_ids[logical_id] = url
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "QueueName")] = name
        resolver.attributes[(logical_id, "QueueUrl")] = url
        self._queue_urls_by_arn[arn] = url

    def _secret(self, logical_id: str, properties: dict[str, Any]) -> None:
        props = self.stack.resolver.resolve(properties)
        value = props.get("SecretString") or _generate_secret(props.get("GenerateSecretString", {}))
        name = props.get("Name") or f"{self.stack.name}/{logical_id}"
        arn = self._clients["secretsmanager"].create_secret(Name=name, SecretString=value)["ARN"]
        self.stack.resolver.physical_ids[logical_id] = arn

    def _bucket(self, logical_id: str, properties: dict[str, Any]) -> None:
        props = self.stack.resolver.resolve(properties)
        name = props.get("BucketName") or self._name(logical_id).lower()
        self._clients["s3"].create_bucket(Bucket=name)
        self.stack.resolver.physical_ids[logical_id] = name
        self.stack.resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"

    def _role(self, logical_id: str, properties: dict[str, Any]) -> None:
        """Roles are not enforced locally: the role gets a name and an ARN that other resources can use."""
        name = self._name(logical_id)
        self.stack.resolver.physical_ids[logical_id] = name
        self.stack.resolver.attributes[(logical_id, "Arn")] = f"arn:aws:iam::{self.stack.account}:role/{name}"

    def _merged_function_properties(self, properties: dict[str, Any]) -> dict[str, Any]:
        merged = dict(self._template.get("Globals", {}).get("Function", {}))
        for key, value in properties.items():
            if key == "Environment":
                variables = {
                    **merged.get("Environment", {}).get("Variables", {}),
                    **value.get("Variables", {}),
                }
                merged["Environment"] = {"Variables": variables}
            else:
                merged[key] = value
        return merged

    def _function(self, logical_id: str, properties: dict[str, Any]) -> None:
        merged = self._merged_function_properties(properties)
        resolver = self.stack.resolver
        environment = {
            key: str(value)
            for key, value in resolver.resolve(merged.get("Environment", {}).get("Variables", {})).items()
        }
        name = merged.get("FunctionName") or self._name(logical_id)
        arn = f"arn:aws:lambda:{self.stack.region}:{self.stack.account}:function:{name}"
        self.stack.functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=arn,
            code_dir=PROJECT_ROOT / merged["CodeUri"],
            handler=merged["Handler"],
            timeout=int(merged.get("Timeout", 3)),
            memory_mb=int(merged.get("MemorySize", 128)),
            environment=environment,
            events=merged.get("Events", {}),
            function_url=resolver.resolve(merged.get("FunctionUrlConfig")) is not None,
        )
        resolver.physical_ids[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = arn

    def _state_machine(self, logical_id: str, properties: dict[str, Any]) -> None:
        resolver = self.stack.resolver
        name = resolver.resolve(properties["Name"]) if "Name" in properties else self._name(logical_id)
        if "DefinitionUri" in properties:
            definition = (PROJECT_ROOT / properties["DefinitionUri"]).read_text()
        else:
            definition = json.dumps(resolver.resolve(properties["Definition"]))
        substitutions = resolver.resolve(properties.get("DefinitionSubstitutions", {}))
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", str(value))
        leftover = re.findall(r"\$\{([A-Za-z0-9_]+)\}", definition)
        if leftover:
            raise TemplateError(f"{logical_id}: definition has unsubstituted variables {leftover}")
        role = f"arn:aws:iam::{self.stack.account}:role/{name}-role"
        arn = self._clients["stepfunctions"].create_state_machine(
            name=name, definition=definition, roleArn=role, type=properties.get("Type", "STANDARD")
        )["stateMachineArn"]
        resolver.physical_ids[logical_id] = arn
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "Name")] = name
        for event_id, event in properties.get("Events", {}).items():
            if event["Type"] == "Schedule":
                props = resolver.resolve(event["Properties"])
                self.stack.schedules.append(
                    Schedule(
                        source=f"{logical_id}.{event_id}",
                        expression=props["Schedule"],
                        state_machine_arn=arn,
                        input=props.get("Input", "{}"),
                    )
                )
            else:
                raise TemplateError(f"{logical_id}.{event_id}: state machine event {event['Type']} not supported")

    # ---- event sources ------------------------------------------------------------------------

    def _wire_event_sources(self) -> None:
        resolver = self.stack.resolver
        for logical_id, spec in self.stack.functions.items():
            for event_id, event in spec.events.items():
                props = resolver.resolve(event.get("Properties", {}))
                kind = event["Type"]
                report = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
                if kind == "Api":
                    self.stack.api_routes.append((logical_id, props["Method"].upper(), props["Path"]))
                elif kind == "SQS":
                    arn = props["Queue"]
                    self.stack.queue_sources.append(
                        QueueSource(
                            logical_id,
                            self._queue_urls_by_arn[arn],
                            arn,
                            int(props.get("BatchSize", 10)),
                            report,
                            int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 1)),
                        )
                    )
                elif kind == "DynamoDB":
                    on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
                    self.stack.stream_sources.append(
                        StreamSource(
                            function=logical_id,
                            stream_arn=props["Stream"],
                            starting_position=props.get("StartingPosition", "LATEST"),
                            batch_size=int(props.get("BatchSize", 100)),
                            maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                            report_failures=report,
                            on_failure_queue_url=self._queue_urls_by_arn.get(on_failure) if on_failure else None,
                            filters=[
                                json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])
                            ],
                        )
                    )
                elif kind == "Schedule":
                    self.stack.schedules.append(
                        Schedule(
                            source=f"{logical_id}.{event_id}",
                            expression=props["Schedule"],
                            function=logical_id,
                            input=props.get("Input", "{}"),
                        )
                    )
                else:
                    raise TemplateError(f"{logical_id}.{event_id}: event type {kind} is not supported locally")
