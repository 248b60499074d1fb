"""Metrics in the cloud (#14 item 6): the InfluxDB v2 endpoint the ingest function writes to and the API queries.

The ``MetricStore`` parameter chooses:

* ``none`` (the default): no metric store; the functions run with ``METRICS=none``, ``/api/status`` answers
  ``metricsDBDisabled: true`` and the console says metrics are off instead of drawing empty charts;
* ``existing``: an endpoint that already runs (Amazon Timestream for InfluxDB, InfluxDB Cloud, your own InfluxDB 2):
  ``InfluxDBUrl``, ``InfluxDBOrg``, ``InfluxDBBucket``, and ``InfluxDBTokenSecret``, the name of a Secrets Manager
  secret of the stack's account and region holding the token (the text, or JSON with ``token``; or JSON with
  ``username`` and ``password``);
* ``create``: the stack creates an ``AWS::Timestream::InfluxDBInstance`` (``InfluxDBInstanceType``, 20 GiB, one
  availability zone) with the organisation and bucket above, its admin credentials generated into a secret of the
  stack's, in the public subnets ``InfluxDBSubnetIds`` of ``InfluxDBVpcId`` behind a security group that opens
  8086 to ``InfluxDBAllowedCidr``. The functions do not run in a VPC (they call IoT, EventBridge, DynamoDB and S3
  without NAT gateways), so the instance is publicly accessible and reached over TLS with those credentials; narrow
  the CIDR, or put the functions in the VPC, if that is not acceptable. The instance, its secret and its security
  group are retained when the stack is deleted (they hold or guard data).

Either way the token never sits in an environment variable: the functions get ``INFLUXDB_TOKEN_SECRET`` and read
the secret at a cold start (``chalicelib/adapters/secret_values_secretsmanager.py``), which
``FUNCTION_STATEMENTS`` allows the ingest and API functions.
"""

from __future__ import annotations

from typing import Any, Final

from .fragments import Fragment

METRICS_FUNCTIONS: Final = ("APIHandler", "Ingest")
"""The functions that use the metric store: ingest writes every value, the API answers ``/api/metric``."""
INSTANCE: Final = "MetricsInfluxDB"
CREDENTIALS: Final = "MetricsInfluxDBCredentials"
SECURITY_GROUP: Final = "MetricsInfluxDBSecurityGroup"
PORT: Final = 8086
USERNAME: Final = "mycontroller"
NO_VALUE: Final = {"Ref": "AWS::NoValue"}
SECRET_NAME_PATTERN: Final = r"^[A-Za-z0-9/_+=.@-]{0,512}$"

CONDITIONS: Final[dict[str, Any]] = {
    "MetricsExisting": {"Fn::Equals": [{"Ref": "MetricStore"}, "existing"]},
    "MetricsCreate": {"Fn::Equals": [{"Ref": "MetricStore"}, "create"]},
    "MetricsOn": {"Fn::Or": [{"Condition": "MetricsExisting"}, {"Condition": "MetricsCreate"}]},
}

METRICS_URL: Final[dict[str, Any]] = {"Fn::If": [
    "MetricsCreate", {"Fn::Sub": f"https://${{{INSTANCE}.Endpoint}}:{PORT}"},
    {"Fn::If": ["MetricsExisting", {"Ref": "InfluxDBUrl"}, NO_VALUE]}]}
METRICS_SECRET: Final[dict[str, Any]] = {"Fn::If": [
    "MetricsCreate", {"Ref": CREDENTIALS},
    {"Fn::If": ["MetricsExisting", {"Ref": "InfluxDBTokenSecret"}, NO_VALUE]}]}
NAMED_SECRET: Final[dict[str, Any]] = {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
                                                  "${AWS::AccountId}:secret:${InfluxDBTokenSecret}-??????"}
"""The existing secret by name: Secrets Manager appends six random characters to a secret's name in its ARN."""
NO_SECRET: Final[dict[str, Any]] = {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
                                               "${AWS::AccountId}:secret:${AWS::StackName}-no-metric-store"}
"""What the statement names without a metric store (a statement needs a resource; the functions then read none)."""

FUNCTION_STATEMENTS: Final[list[dict[str, Any]]] = [{
    "Sid": "MetricsCredentials", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
    "Resource": [{"Fn::If": ["MetricsCreate", {"Ref": CREDENTIALS},
                             {"Fn::If": ["MetricsExisting", NAMED_SECRET, NO_SECRET]}]}],
}]
"""The ingest and API functions read the InfluxDB credentials secret (``INFLUXDB_TOKEN_SECRET``) at a cold start;
add ``kms:Decrypt`` on its key if that secret is encrypted with a customer managed key."""


def parameters() -> dict[str, Any]:
    return {
        "MetricStore": {"Type": "String", "Default": "none", "AllowedValues": ["none", "existing", "create"],
                        "Description": "Metric history: none, an existing InfluxDB 2 endpoint, or a Timestream for "
                                       "InfluxDB instance created in the stack"},
        "InfluxDBUrl": {"Type": "String", "Default": "", "AllowedPattern": r"^$|^https?://.+$",
                        "Description": "existing: the InfluxDB 2 URL (https://host:8086)"},
        "InfluxDBOrg": {"Type": "String", "Default": "mycontroller", "MinLength": 1, "MaxLength": 64,
                        "Description": "existing or create: the organisation"},
        "InfluxDBBucket": {"Type": "String", "Default": "mycontroller", "MinLength": 2, "MaxLength": 64,
                           "AllowedPattern": r'^[^_"][^"]*$', "Description": "existing or create: the bucket"},
        "InfluxDBTokenSecret": {"Type": "String", "Default": "", "AllowedPattern": SECRET_NAME_PATTERN,
                                "Description": "existing: the name of the Secrets Manager secret holding the token"},
        "InfluxDBInstanceType": {"Type": "String", "Default": "db.influx.medium",
                                 "AllowedValues": ["db.influx.medium", "db.influx.large", "db.influx.xlarge",
                                                   "db.influx.2xlarge"],
                                 "Description": "create: the instance type"},
        "InfluxDBVpcId": {"Type": "String", "Default": "", "AllowedPattern": r"^$|^vpc-([0-9a-f]{8}|[0-9a-f]{17})$",
                          "Description": "create: the VPC of the instance"},
        "InfluxDBSubnetIds": {"Type": "CommaDelimitedList", "Default": "",
                              "Description": "create: 1-3 public subnets of that VPC for the instance"},
        "InfluxDBAllowedCidr": {"Type": "String", "Default": "0.0.0.0/0",
                                "AllowedPattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$",
                                "Description": "create: who may reach port 8086 (the functions have no fixed "
                                               "addresses; TLS and credentials protect it)"},
    }


def instance_resources() -> dict[str, Any]:
    """The Timestream for InfluxDB instance with generated admin credentials, when ``MetricStore`` is ``create``."""
    name = {"Fn::Join": ["-", ["mycontroller", {"Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [
        2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]}]}]]}  # mycontroller-<8 hex of the stack id>: 3-40
    retained = {"Condition": "MetricsCreate", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    return {
        CREDENTIALS: {
            "Type": "AWS::SecretsManager::Secret", **retained,
            "Properties": {
                "Description": {"Fn::Sub": "MyController ${AWS::StackName}: the InfluxDB instance's admin user"},
                "GenerateSecretString": {"SecretStringTemplate": f'{{"username": "{USERNAME}"}}',
                                         "GenerateStringKey": "password", "PasswordLength": 32,
                                         "ExcludePunctuation": True},
            },
        },
        SECURITY_GROUP: {
            "Type": "AWS::EC2::SecurityGroup", **retained,
            # the VPC parameter is empty unless MetricStore is create, where this group exists (a String, not
            # AWS::EC2::VPC::Id, which CloudFormation would check even when unused)
            "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W1030"]}}},
            "Properties": {
                "GroupDescription": "MyController metrics: InfluxDB over TLS",
                "VpcId": {"Ref": "InfluxDBVpcId"},
                "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT,
                                          "CidrIp": {"Ref": "InfluxDBAllowedCidr"},
                                          "Description": "InfluxDB API (the functions, the operator)"}],
            },
        },
        INSTANCE: {
            "Type": "AWS::Timestream::InfluxDBInstance", **retained,
            "Properties": {
                "Name": name,
                "DbInstanceType": {"Ref": "InfluxDBInstanceType"},
                "DbStorageType": "InfluxIOIncludedT1",
                "AllocatedStorage": 20,
                "DeploymentType": "SINGLE_AZ",
                "PubliclyAccessible": True,
                "Port": PORT,
                "Username": USERNAME,
                "Password": {"Fn::Sub": f"{{{{resolve:secretsmanager:${{{CREDENTIALS}}}:SecretString:password}}}}"},
                "Organization": {"Ref": "InfluxDBOrg"},
                "Bucket": {"Ref": "InfluxDBBucket"},
                "VpcSubnetIds": {"Ref": "InfluxDBSubnetIds"},
                "VpcSecurityGroupIds": [{"Ref": SECURITY_GROUP}],
                "Tags": [{"Key": "mycontroller:stack", "Value": {"Ref": "AWS::StackName"}}],
            },
        },
    }


def function_environment() -> dict[str, Any]:
    """The metric store settings of the functions that use it (they win over the base ``METRICS=none``)."""
    return {
        "METRICS": {"Fn::If": ["MetricsOn", "influxdb", "none"]},
        "INFLUXDB_URL": METRICS_URL,
        "INFLUXDB_ORG": {"Fn::If": ["MetricsOn", {"Ref": "InfluxDBOrg"}, NO_VALUE]},
        "INFLUXDB_BUCKET": {"Fn::If": ["MetricsOn", {"Ref": "InfluxDBBucket"}, NO_VALUE]},
        "INFLUXDB_TOKEN_SECRET": METRICS_SECRET,
    }


def metrics_fragment() -> Fragment:
    """The contributor (``infra/contributors.py``)."""
    return {
        "Parameters": parameters(),
        "Conditions": dict(CONDITIONS),
        "Resources": instance_resources(),
        "Outputs": {"MetricsEndpoint": {
            "Condition": "MetricsOn", "Description": "The InfluxDB 2 endpoint",
            "Value": {"Fn::If": ["MetricsCreate", {"Fn::Sub": f"https://${{{INSTANCE}.Endpoint}}:{PORT}"},
                                 {"Ref": "InfluxDBUrl"}]}}},
        "Environment": {name: function_environment() for name in METRICS_FUNCTIONS},
        "Policies": {name: [dict(statement) for statement in FUNCTION_STATEMENTS] for name in METRICS_FUNCTIONS},
    }
