"""The REST API and the websocket API in front of the functions.

REST (``AWS::ApiGateway::RestApi``, regional): its OpenAPI ``Body`` is the one Chalice generates from the app's
routes (``CFNSwaggerGenerator``: every route a Lambda proxy integration of ``APIHandler``, CORS, binary types), so
the API Gateway routes are exactly ``app.routes``. Routes keep their ``/api/...`` paths under the stage
(``StageName``, default ``v1``): ``https://<id>.execute-api.<region>.amazonaws.com/v1/api/status``, never
``/api/api``. Its deployment's logical id carries a hash of the body (``RestAPIDeployment<hash>``): CloudFormation
deploys the API again exactly when its body changes, and the stage ``RestAPIStage`` points at it.

Errors API Gateway answers itself (an unknown path, throttling, a function that failed or timed out) come in the
project's JSON error shape ``{"status", "message", "field"}`` (``GATEWAY_RESPONSES``, in the body), with CORS
headers, as the function's own errors do; an unknown path is a 404, not API Gateway's 403 "Missing Authentication
Token".

Websocket (``AWS::ApiGatewayV2::Api``): ``$connect``, ``$default`` and ``$disconnect`` routes to their functions,
deployed automatically on the same stage name.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from .functions import LambdaFunction

REST_API: Final = "RestAPI"
REST_STAGE: Final = "RestAPIStage"
WEBSOCKET_API: Final = "WebsocketAPI"
WEBSOCKET_STAGE: Final = "WebsocketAPIStage"

GATEWAY_RESPONSES: Final[dict[str, tuple[int, str | None]]] = {
    "MISSING_AUTHENTICATION_TOKEN": (404, "Not found"),  # no route matched (there is no IAM or key auth here)
    "RESOURCE_NOT_FOUND": (404, None),
    "UNAUTHORIZED": (401, None),
    "ACCESS_DENIED": (403, None),
    "EXPIRED_TOKEN": (403, None),
    "INVALID_SIGNATURE": (403, None),
    "INVALID_API_KEY": (403, None),
    "WAF_FILTERED": (403, None),
    "BAD_REQUEST_PARAMETERS": (400, None),
    "BAD_REQUEST_BODY": (400, None),
    "REQUEST_TOO_LARGE": (413, None),
    "UNSUPPORTED_MEDIA_TYPE": (415, None),
    "THROTTLED": (429, None),
    "QUOTA_EXCEEDED": (429, None),
    "INTEGRATION_FAILURE": (502, None),
    "INTEGRATION_TIMEOUT": (504, None),
    "API_CONFIGURATION_ERROR": (500, None),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, None),
    "AUTHORIZER_FAILURE": (500, None),
    "DEFAULT_4XX": (400, None),
    "DEFAULT_5XX": (500, None),
}
"""Every gateway response type, its status and its message (``None``: API Gateway's own, JSON-escaped)."""


def error_template(status: int, message: str | None) -> str:
    """The project's error body (``chalicelib/api/errors.py``) as an API Gateway response template."""
    text = json.dumps(message) if message is not None else "$context.error.messageString"
    return f'{{"status":{status},"message":{text},"field":null}}'


def gateway_responses() -> dict[str, Any]:
    """``x-amazon-apigateway-gateway-responses`` of the OpenAPI body: inside the body, not as
    ``AWS::ApiGateway::GatewayResponse`` resources, which the body's next import would silently drop."""
    return {response_type: {
        "statusCode": status,
        "responseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
                               "gatewayresponse.header.Content-Type": "'application/json'"},
        "responseTemplates": {"application/json": error_template(status, message)},
    } for response_type, (status, message) in GATEWAY_RESPONSES.items()}


def _by_name(value: Any, api_function: LambdaFunction) -> Any:
    """``value`` with ``${APIHandler.Arn}`` replaced by the function's ARN built from its name, so that the API does
    not depend on the function (its role may name resources that name the API: a console's distribution)."""
    if isinstance(value, dict):
        return {key: _by_name(item, api_function) for key, item in value.items()}
    if isinstance(value, list):
        return [_by_name(item, api_function) for item in value]
    if isinstance(value, str):
        return value.replace(f"${{{api_function.logical_id}.Arn}}",
                             "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
                             f"${{AWS::StackName}}-{api_function.name}")
    return value


def rest_body(app: Any, api_function: LambdaFunction) -> dict[str, Any]:
    """The REST API's OpenAPI document, as Chalice generates it for its own CloudFormation output, naming the
    function by its ARN (``_by_name``), with the gateway responses."""
    from chalice.deploy.swagger import CFNSwaggerGenerator

    body: dict[str, Any] = _by_name(CFNSwaggerGenerator().generate_swagger(app), api_function)
    body["x-amazon-apigateway-gateway-responses"] = gateway_responses()
    return body


def rest_api_resources(app: Any, api_function: LambdaFunction) -> dict[str, Any]:
    body = rest_body(app, api_function)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:10]
    deployment = f"RestAPIDeployment{digest}"
    function = api_function.logical_id
    return {
        REST_API: {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {"Name": {"Fn::Sub": "${AWS::StackName}"}, "Body": body,
                           "EndpointConfiguration": {"Types": ["REGIONAL"]}},
        },
        deployment: {
            "Type": "AWS::ApiGateway::Deployment",
            "Properties": {"RestApiId": {"Ref": REST_API}, "Description": f"routes {digest}"},
        },
        REST_STAGE: {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {"RestApiId": {"Ref": REST_API}, "DeploymentId": {"Ref": deployment},
                           "StageName": {"Ref": "StageName"}},
        },
        f"{function}InvokePermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {"Action": "lambda:InvokeFunction", "FunctionName": {"Ref": function},
                           "Principal": "apigateway.amazonaws.com",
                           "SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                                                    "${AWS::AccountId}:${RestAPI}/*"}},
        },
    }


def websocket_resources(functions: list[LambdaFunction]) -> dict[str, Any]:
    handlers = [f for f in functions if f.trigger == "websocket"]
    if not handlers:
        return {}
    resources: dict[str, Any] = {
        WEBSOCKET_API: {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {"Name": {"Fn::Sub": "${AWS::StackName}-websocket"}, "ProtocolType": "WEBSOCKET",
                           "RouteSelectionExpression": "$request.body.action"},
        },
    }
    routes = []
    for function in handlers:
        logical = function.logical_id
        routes.append(f"{logical}Route")
        resources[f"{logical}APIIntegration"] = {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": WEBSOCKET_API}, "IntegrationType": "AWS_PROXY",
                "ContentHandlingStrategy": "CONVERT_TO_TEXT",
                "IntegrationUri": {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/"
                                              f"2015-03-31/functions/${{{logical}.Arn}}/invocations"},
            },
        }
        resources[f"{logical}Route"] = {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {"ApiId": {"Ref": WEBSOCKET_API}, "RouteKey": function.route_key,
                           "Target": {"Fn::Sub": f"integrations/${{{logical}APIIntegration}}"}},
        }
        resources[f"{logical}InvokePermission"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {"Action": "lambda:InvokeFunction", "FunctionName": {"Ref": logical},
                           "Principal": "apigateway.amazonaws.com",
                           "SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                                                    "${AWS::AccountId}:${WebsocketAPI}/*"}},
        }
    resources[WEBSOCKET_STAGE] = {
        "Type": "AWS::ApiGatewayV2::Stage",
        "DependsOn": sorted(routes),
        "Properties": {"ApiId": {"Ref": WEBSOCKET_API}, "StageName": {"Ref": "StageName"}, "AutoDeploy": True},
    }
    return resources


def api_outputs() -> dict[str, Any]:
    return {
        "RestApiUrl": {"Description": "The REST API: <RestApiUrl>/api/status",
                       "Value": {"Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
                                            "${RestAPIStage}"}},
        "WebsocketUrl": {"Description": "The websocket API (subscriptions, live updates)",
                         "Value": {"Fn::Sub": "wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
                                              "${WebsocketAPIStage}"}},
        "RestApiId": {"Value": {"Ref": REST_API}},
        "WebsocketApiId": {"Value": {"Ref": WEBSOCKET_API}},
    }
