"""The template's resources created in moto, one by one, in dependency order.

moto's CloudFormation stops at the first type it does not know and then fails ``DescribeStacks`` (tried: the
Scheduler group, a ``RestApi`` with a ``Body``), so the twin creates each resource through moto's ordinary APIs
with the template's own properties, the way CloudFormation would, and names what it could not create
(``Created.skipped``): nothing is skipped silently. The stack itself is then registered in moto's CloudFormation
with its outputs resolved, so ``describe_stacks`` (what ``infra.provision --stack`` reads) answers as AWS does.

Physical names follow CloudFormation's pattern (``<stack>-<LogicalId>-<suffix>``) unless the template names the
resource.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .template import ACCOUNT_ID, StackTemplateError, Template, Unresolved, creation_order

log = logging.getLogger("twin.resources")

KEPT_BY_TWIN = {
    "AWS::Lambda::EventSourceMapping": "delivered by the twin (moto would run the function in Docker)",
    "AWS::ApiGateway::Deployment": "served by the twin's API port",
    "AWS::ApiGateway::Stage": "served by the twin's API port",
    "AWS::ApiGatewayV2::Deployment": "served by the twin's API port",
    "AWS::ApiGatewayV2::Stage": "served by the twin's API port",
    "AWS::ApiGateway::Account": "nothing to emulate (API Gateway's CloudWatch role)",
    "AWS::ApiGateway::GatewayResponse": "served by the twin's API port",
    "AWS::ApiGateway::BasePathMapping": "served by the twin's API port",
    "AWS::CloudFront::Distribution": "its behaviours served by the twin's API port (S3 origin: frontend/dist)",
    "AWS::CloudFront::OriginAccessControl": "the twin's API port reads the console files itself",
    "AWS::CloudFront::Function": "not run (JavaScript): the twin routes the websocket path and the single page's "
                                 "routes as the distribution's behaviours say",
}
"""Types the twin plays itself instead of creating them in moto (listed with the reason at start)."""


def physical_name(template: Template, logical: str, limit: int = 64, lower: bool = False) -> str:
    suffix = hashlib.sha256(f"{template.stack}/{logical}".encode()).hexdigest()[:12].upper()
    name = f"{template.stack}-{logical}"[: limit - 13] + f"-{suffix}"
    return name.lower() if lower else name


@dataclass
class Created:
    """What became of each resource: created in moto, played by the twin, or not created (with why)."""

    created: dict[str, str] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


class Creator:
    """Creates one template's resources in moto through boto3 clients on the twin's AWS endpoint."""

    def __init__(self, template: Template, client: Callable[[str], Any]) -> None:
        self.template = template
        self.client = client
        self.outcome = Created()

    def create_all(self) -> Created:
        template = self.template
        for logical in creation_order(template):
            resource = template.resources[logical]
            kind = str(resource.get("Type"))
            if not template.condition_holds(resource):
                self.outcome.skipped[logical] = f"{kind}: condition {resource['Condition']} is false"
                continue
            if kind in KEPT_BY_TWIN:
                stage = (resource.get("Properties") or {}).get("StageName")
                template.physical[logical] = str(template.resolve(stage)) if kind.endswith("::Stage") and stage \
                    else f"{logical}-{hashlib.sha256(logical.encode()).hexdigest()[:8]}"
                template.attributes[logical] = _played_attributes(kind, template.physical[logical])
                self.outcome.kept[logical] = f"{kind}: {KEPT_BY_TWIN[kind]}"
                continue
            create = getattr(self, "_" + kind.replace("::", "_").replace("-", "_"), None)
            if create is None:
                self._placeholder(logical, f"{kind}: moto and the twin have no emulation of this type")
                continue
            try:
                props = template.resolve(resource.get("Properties") or {})
            except Unresolved as error:
                self._placeholder(logical, f"{kind}: {error}")
                continue
            try:
                ref, attributes = create(logical, props)
            except Exception as error:  # moto refusing a property: name it, go on with the rest
                self._placeholder(logical, f"{kind}: moto refused it: {error}")
                continue
            template.physical[logical] = ref
            template.attributes[logical] = attributes
            self.outcome.created[logical] = kind
        return self.outcome

    def _placeholder(self, logical: str, reason: str) -> None:
        """Not created: listed. Dependants are still attempted (their own reference errors name this one)."""
        self.outcome.skipped[logical] = reason
        log.warning("not created: %s (%s)", logical, reason)

    def register_stack(self) -> dict[str, str]:
        """The stack in moto's CloudFormation with the template's outputs, resolved (``describe_stacks``)."""
        outputs: dict[str, str] = {}
        for name, output in (self.template.body.get("Outputs") or {}).items():
            try:
                if "Condition" in output and not self.template.condition(output["Condition"]):
                    continue
                value = self.template.resolve(output["Value"])
            except Unresolved as error:
                log.warning("output %s not available: %s", name, error)
                continue
            outputs[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        manifest = {"AWSTemplateFormatVersion": "2010-09-09",
                    "Description": "the cloud twin's record of the stack (resources created one by one)",
                    "Resources": {"TwinManifest": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                    "Outputs": {name: {"Value": value} for name, value in outputs.items()}}
        with warnings.catch_warnings():  # moto warns that it does not know WaitConditionHandle: it need not
            warnings.simplefilter("ignore")
            self.client("cloudformation").create_stack(StackName=self.template.stack,
                                                       TemplateBody=json.dumps(manifest))
        return outputs

    # ------------------------------------------------------------------------------------------- helpers

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.template.region if region else ''}:{ACCOUNT_ID}:{resource}"

    @staticmethod
    def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
        tags = props.get("Tags") or []
        return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags] if isinstance(tags, list) else []

    # ------------------------------------------------------------------------------------------- types

    def _AWS_DynamoDB_Table(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("TableName") or physical_name(self.template, logical, 255)
        args: dict[str, Any] = {"TableName": name, "KeySchema": props["KeySchema"],
                                "AttributeDefinitions": props["AttributeDefinitions"],
                                "BillingMode": props.get("BillingMode", "PROVISIONED")}
        for key in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in props:
                args[key] = props[key]
        if args["BillingMode"] == "PAY_PER_REQUEST":
            for index in args.get("GlobalSecondaryIndexes", []):
                index.pop("ProvisionedThroughput", None)
        elif "ProvisionedThroughput" not in args:
            args["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        if props.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        dynamodb = self.client("dynamodb")
        table = dynamodb.create_table(**args)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": ttl["AttributeName"]})
        pitr = (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
        if pitr:
            dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True})
        return name, {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn", "")}

    def _AWS_SQS_Queue(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        fifo = bool(props.get("FifoQueue"))
        name = props.get("QueueName") or physical_name(self.template, logical, 80 - (5 if fifo else 0))
        if fifo and not name.endswith(".fifo"):
            name += ".fifo"
        attributes: dict[str, str] = {}
        for key, value in props.items():
            if key in ("QueueName", "Tags"):
                continue
            if key in ("RedrivePolicy", "RedriveAllowPolicy"):
                attributes[key] = json.dumps(value)
            elif isinstance(value, bool):
                attributes[key] = "true" if value else "false"
            else:
                attributes[key] = str(value)
        url = self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.arn("sqs", name)
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def _AWS_SQS_QueuePolicy(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={
                "Policy": json.dumps(props["PolicyDocument"])})
        return f"{logical}-policy", {}

    def _AWS_IAM_Role(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("RoleName") or physical_name(self.template, logical, 64)
        iam = self.client("iam")
        role = iam.create_role(RoleName=name, Path=props.get("Path", "/"),
                               AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))["Role"]
        for policy in props.get("Policies") or []:
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                                PolicyDocument=json.dumps(policy["PolicyDocument"]))
        for arn in props.get("ManagedPolicyArns") or []:
            try:
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            except Exception as error:  # an AWS managed policy moto does not know
                log.warning("role %s: managed policy %s not attached in moto: %s", logical, arn, error)
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    def _AWS_IAM_Policy(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        iam = self.client("iam")
        for role in props.get("Roles") or []:
            iam.put_role_policy(RoleName=role, PolicyName=props["PolicyName"],
                                PolicyDocument=json.dumps(props["PolicyDocument"]))
        return props["PolicyName"], {}

    def _AWS_IAM_ManagedPolicy(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        iam = self.client("iam")
        name = props.get("ManagedPolicyName") or physical_name(self.template, logical, 128)
        arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(props["PolicyDocument"]))["Policy"]["Arn"]
        for role in props.get("Roles") or []:
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        return arn, {"PolicyArn": arn}

    def _AWS_Lambda_Function(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Registered in moto with a stub package (its ARN, configuration, permissions); the twin's workers run
        the real handler from this checkout."""
        name = props.get("FunctionName") or physical_name(self.template, logical, 64)
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w") as archive:
            archive.writestr("twin.txt", "the cloud twin runs this function from the checkout\n")
        args: dict[str, Any] = {"FunctionName": name, "Role": props["Role"],
                                "Handler": props.get("Handler", "index.handler"),
                                "Runtime": props.get("Runtime", "python3.11"),
                                "Code": {"ZipFile": package.getvalue()},
                                "Timeout": int(props.get("Timeout", 3)),
                                "MemorySize": int(props.get("MemorySize", 128))}
        if props.get("Environment"):
            args["Environment"] = {"Variables": {k: str(v) for k, v in props["Environment"]["Variables"].items()}}
        function = self.client("lambda").create_function(**args)
        return name, {"Arn": function["FunctionArn"]}

    def _AWS_Lambda_Permission(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        args = {"FunctionName": props["FunctionName"], "StatementId": logical, "Action": props["Action"],
                "Principal": props["Principal"]}
        for key in ("SourceArn", "SourceAccount"):
            if key in props:
                args[key] = props[key]
        self.client("lambda").add_permission(**args)
        return logical, {}

    def _AWS_Events_EventBus(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        arn = self.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        return props["Name"], {"Arn": arn, "Name": props["Name"]}

    def _AWS_Events_Rule(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The rule and its non-Lambda targets in moto (moto delivers to SQS); Lambda targets and schedules are
        the twin's (``sources.py``)."""
        name = props.get("Name") or physical_name(self.template, logical, 64)
        args: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
        bus = props.get("EventBusName")
        if bus:
            args["EventBusName"] = str(bus).rsplit("/", 1)[-1]
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            args["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "ScheduleExpression" in props:
            args["ScheduleExpression"] = props["ScheduleExpression"]
        events = self.client("events")
        arn = events.put_rule(**args)["RuleArn"]
        targets = [dict(t) for t in props.get("Targets") or [] if ":lambda:" not in str(t.get("Arn"))]
        if targets and "EventPattern" in props:
            events.put_targets(Rule=name, EventBusName=args.get("EventBusName", "default"), Targets=targets)
        return name, {"Arn": arn}

    def _AWS_Scheduler_ScheduleGroup(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("Name") or physical_name(self.template, logical, 64)
        arn = self.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        return name, {"Arn": arn}

    def _AWS_Scheduler_Schedule(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("Name") or physical_name(self.template, logical, 64)
        args = {key: value for key, value in props.items() if key != "Name"}
        arn = self.client("scheduler").create_schedule(Name=name, **args)["ScheduleArn"]
        return name, {"Arn": arn}

    def _AWS_KMS_Key(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        args: dict[str, Any] = {"Description": props.get("Description", "")}
        if props.get("KeyPolicy"):
            args["Policy"] = json.dumps(props["KeyPolicy"])
        for key in ("KeyUsage", "KeySpec"):
            if key in props:
                args[key] = props[key]
        kms = self.client("kms")
        key = kms.create_key(**args)["KeyMetadata"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=key["KeyId"])
        return key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]}

    def _AWS_KMS_Alias(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        self.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        return props["AliasName"], {}

    def _AWS_S3_Bucket(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("BucketName") or physical_name(self.template, logical, 63, lower=True)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if (props.get("VersioningConfiguration") or {}).get("Status"):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={
                "Status": props["VersioningConfiguration"]["Status"]})
        return name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com",
                      "RegionalDomainName": f"{name}.s3.{self.template.region}.amazonaws.com",
                      "WebsiteURL": f"http://{name}.s3-website-{self.template.region}.amazonaws.com"}

    def _AWS_S3_BucketPolicy(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """moto applies a bucket policy's statements without their conditions: a ``Deny`` unless TLS would refuse
        every request (the twin's endpoint is plain HTTP, AWS's never is). Conditional statements stay out of
        moto, each listed."""
        document = dict(props["PolicyDocument"])
        statements = document.get("Statement") or []
        statements = statements if isinstance(statements, list) else [statements]
        for index, statement in enumerate(statements):
            if statement.get("Condition"):
                name = statement.get("Sid") or f"statement {index}"
                self.outcome.kept[f"{logical}.{name}"] = (
                    f"AWS::S3::BucketPolicy statement ({statement.get('Effect')} with a condition): not given to "
                    "moto, which would apply it without its condition")
        document["Statement"] = [statement for statement in statements if not statement.get("Condition")]
        if document["Statement"]:
            self.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))
        return f"{logical}-policy", {}

    def _AWS_IoT_Policy(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("PolicyName") or physical_name(self.template, logical, 128)
        document = props["PolicyDocument"]
        policy = self.client("iot").create_policy(
            policyName=name, policyDocument=document if isinstance(document, str) else json.dumps(document))
        return name, {"Arn": policy["policyArn"], "Id": name}

    def _AWS_IoT_TopicRule(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("RuleName") or (logical + "_" + physical_name(self.template, logical)[-12:])
        payload = props["TopicRulePayload"]
        lowered = json.loads(json.dumps(payload), object_hook=_lower_first)
        self.client("iot").create_topic_rule(ruleName=name, topicRulePayload=lowered)
        return name, {"Arn": self.arn("iot", f"rule/{name}")}

    def _AWS_SSM_Parameter(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("Name") or ("/" + physical_name(self.template, logical, 128))
        self.client("ssm").put_parameter(Name=name, Value=str(props["Value"]), Type=props.get("Type", "String"))
        return name, {"Type": props.get("Type", "String"), "Value": str(props["Value"])}

    def _AWS_SecretsManager_Secret(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("Name") or physical_name(self.template, logical, 256)
        args: dict[str, Any] = {"Name": name}
        if "SecretString" in props:
            args["SecretString"] = str(props["SecretString"])
        elif "GenerateSecretString" in props:
            args["SecretString"] = hashlib.sha256(name.encode()).hexdigest()
        if props.get("KmsKeyId"):
            args["KmsKeyId"] = props["KmsKeyId"]
        arn = self.client("secretsmanager").create_secret(**args)["ARN"]
        return arn, {"Id": arn}

    def _AWS_Logs_LogGroup(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("LogGroupName") or physical_name(self.template, logical, 512)
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        if props.get("RetentionInDays"):
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        return name, {"Arn": self.arn("logs", f"log-group:{name}:*")}

    def _AWS_SNS_Topic(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("TopicName") or physical_name(self.template, logical, 256)
        sns = self.client("sns")
        arn = sns.create_topic(Name=name)["TopicArn"]
        for subscription in props.get("Subscription") or []:
            sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
        return arn, {"TopicArn": arn, "TopicName": name}

    def _AWS_SNS_Subscription(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        arn = self.client("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"],
                                           Endpoint=props["Endpoint"])["SubscriptionArn"]
        return arn, {}

    def _AWS_CloudWatch_Alarm(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("AlarmName") or physical_name(self.template, logical, 255)
        args = {key: value for key, value in props.items() if key != "AlarmName"}
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in args:
                args[key] = int(args[key])
        if "Threshold" in args:
            args["Threshold"] = float(args["Threshold"])
        self.client("cloudwatch").put_metric_alarm(AlarmName=name, **args)
        return name, {"Arn": self.arn("cloudwatch", f"alarm:{name}")}

    def _AWS_ApiGateway_RestApi(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("Name") or (props.get("Body") or {}).get("info", {}).get("title") or logical
        api = self.client("apigateway").create_rest_api(name=name)
        return api["id"], {"RootResourceId": api.get("rootResourceId", "")}

    def _AWS_ApiGatewayV2_Api(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        api = self.client("apigatewayv2").create_api(
            Name=props.get("Name") or logical, ProtocolType=props.get("ProtocolType", "WEBSOCKET"),
            RouteSelectionExpression=props.get("RouteSelectionExpression", "$request.body.action"))
        return api["ApiId"], {"ApiEndpoint": api.get("ApiEndpoint", ""), "ApiId": api["ApiId"]}

    def _AWS_ApiGatewayV2_Integration(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        args = {key: value for key, value in props.items() if key in (
            "ApiId", "IntegrationType", "IntegrationUri", "IntegrationMethod", "CredentialsArn")}
        integration = self.client("apigatewayv2").create_integration(**args)
        return integration["IntegrationId"], {}

    def _AWS_ApiGatewayV2_Route(self, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        args = {key: value for key, value in props.items() if key in (
            "ApiId", "RouteKey", "Target", "AuthorizationType", "OperationName")}
        route = self.client("apigatewayv2").create_route(**args)
        return route["RouteId"], {}


def _played_attributes(kind: str, ref: str) -> dict[str, Any]:
    """The ``Fn::GetAtt`` attributes of a resource the twin plays, shaped as AWS's."""
    if kind == "AWS::CloudFront::Distribution":
        return {"DomainName": f"{ref.lower()}.cloudfront.net", "Id": ref}
    if kind == "AWS::CloudFront::OriginAccessControl":
        return {"Id": ref}
    if kind == "AWS::CloudFront::Function":
        return {"FunctionARN": f"arn:aws:cloudfront::{ACCOUNT_ID}:function/{ref}", "Stage": "LIVE"}
    return {}


def _lower_first(value: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's ``TopicRulePayload`` is PascalCase; the IoT API's is camelCase."""
    return {(key[0].lower() + key[1:]) if key else key: item for key, item in value.items()}


def check_template(template: Template) -> None:
    """Types the template uses that nothing here knows are not an error: they are listed at creation."""
    for logical, resource in template.resources.items():
        if "Type" not in resource:
            raise StackTemplateError(f"resource {logical} has no Type")
