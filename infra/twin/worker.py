"""One Lambda function's process in the twin: ``python -m infra.twin.worker`` (started by ``functions.py``).

What Lambda gives a function, the worker gives it: its own process with the template's environment (references
resolved), the handler imported once at start (the module-level container of a warm Lambda), one invocation at a
time with a context object, and its AWS calls authorized against its role. Two botocore hooks are installed on
every session before the handler is imported (``BUILTIN_HANDLERS``, so boto3's, pynamodb's and Powertools'
sessions all get them):

* ``before-call``: the call is turned into its IAM actions and resources (``iam.target``) and checked against the
  role's policies from the template (``iam.Policy``); a refused call is answered as AWS answers it (HTTP 403,
  ``AccessDenied``) without leaving the process. Every call, allowed or refused, is reported to the twin.
* ``before-send``: a request for an AWS host the function was given explicitly (the websocket management
  endpoint ``https://<api>.execute-api.<region>.amazonaws.com/<stage>``, an iot-data endpoint) goes to the
  twin's AWS endpoint instead, with the host it meant in ``X-Twin-Host``: the twin's DNS.

Protocol: length-prefixed JSON frames; requests on stdin, answers on the original stdout (the function's own
prints go to stderr, which the twin logs under the function's name).
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import struct
import sys
import time
import traceback
import uuid
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

HEADER = struct.Struct(">I")


def read_frame(stream: IO[bytes]) -> Any:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    return json.loads(stream.read(size))


def write_frame(stream: IO[bytes], value: Any) -> None:
    body = json.dumps(value, separators=(",", ":")).encode()
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


class Context:
    """The Lambda context object (what Powertools and Chalice read from it)."""

    def __init__(self, request_id: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.invoked_function_arn = os.environ.get("TWIN_FUNCTION_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = "twin"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class Guard:
    """The role check and the host rewrite, as botocore handlers."""

    def __init__(self, policy: Any, endpoint: str, region: str, account: str) -> None:
        self.policy = policy
        self.endpoint = urlsplit(endpoint)
        self.region = region
        self.account = account
        self.calls: list[dict[str, Any]] = []

    def keep_params(self, params: Any, context: Any = None, **_: Any) -> None:
        if context is not None:
            context["twin_params"] = copy.deepcopy(params)

    def before_call(self, model: Any, params: Any, context: Any = None, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        from infra.twin.iam import target

        service = model.service_model.service_name
        api_params = (context or {}).get("twin_params") or {}
        requests = target(service, model.name, api_params, region=self.region, account=self.account,
                          url=str(params.get("url", "")))
        for request in requests:
            decision = self.policy.decide(request)
            self.calls.append({"service": service, "operation": model.name, "action": request.action,
                               "resource": request.resource, "allowed": decision.allowed, "reason": decision.reason,
                               "unevaluated": decision.unevaluated})
            if not decision.allowed:
                role = os.environ.get("TWIN_ROLE_ARN", "")
                principal = role.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + "/" + \
                    os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
                message = (f"User: {principal} is not authorized to perform: {request.action} on resource: "
                           f"{request.resource} because {decision.reason}")
                protocol = model.service_model.protocol
                code = "AccessDenied" if protocol in ("query", "rest-xml", "ec2") else "AccessDeniedException"
                return (AWSResponse(str(params.get("url", "")), 403, {}, None),
                        {"Error": {"Code": code, "Message": message},
                         "ResponseMetadata": {"HTTPStatusCode": 403, "HTTPHeaders": {}}})
        if not requests:
            self.calls.append({"service": service, "operation": model.name, "action": "", "resource": "",
                               "allowed": True, "reason": "needs no permission", "unevaluated": []})
        return None

    def before_send(self, request: Any, **_: Any) -> None:
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        if host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"):
            request.headers["X-Twin-Host"] = host
            request.url = urlunsplit((self.endpoint.scheme, self.endpoint.netloc, parts.path, parts.query, ""))


def _install(guard: Guard) -> None:
    from botocore import handlers

    handlers.BUILTIN_HANDLERS.extend([
        ("before-parameter-build", guard.keep_params),
        ("before-call", guard.before_call),
        ("before-send", guard.before_send),
    ])


def main() -> None:
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the function's prints go to stderr, the twin's log
    sys.stdout = sys.stderr
    requests_in = sys.stdin.buffer

    from infra.twin.iam import Policy

    with open(os.environ["TWIN_POLICY_FILE"], encoding="utf-8") as handle:
        spec = json.load(handle)
    guard = Guard(Policy(spec["documents"], principal_arn=spec.get("role_arn", ""), account=spec["account"],
                         region=spec["region"]),
                  os.environ["AWS_ENDPOINT_URL"], spec["region"], spec["account"])
    _install(guard)
    module_name, _, attribute = os.environ["TWIN_HANDLER"].rpartition(".")
    started = time.perf_counter()
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
        init_error = None
    except Exception as error:  # an init error fails every invocation, as in Lambda
        handler = None
        init_error = {"errorType": type(error).__name__, "errorMessage": str(error),
                      "stackTrace": traceback.format_exc().splitlines()}
    write_frame(protocol_out, {"ready": True, "init_ms": round((time.perf_counter() - started) * 1000, 1),
                               "init_error": init_error, "calls": guard.calls})
    guard.calls = []
    while True:
        request = read_frame(requests_in)
        if request is None:
            return
        context = Context(request.get("request_id") or str(uuid.uuid4()), time.time() + request["timeout_s"])
        answer: dict[str, Any] = {"id": request["id"]}
        try:
            if handler is None:
                raise RuntimeError(f"init failed: {init_error['errorMessage'] if init_error else ''}")
            result = handler(request["event"], context)
            json.dumps(result)
            answer.update(ok=True, result=result)
        except Exception as error:
            answer.update(ok=False, error={"errorType": type(error).__name__, "errorMessage": str(error),
                                           "stackTrace": traceback.format_exc().splitlines()[-12:]})
        answer["calls"], guard.calls = guard.calls, []
        try:
            write_frame(protocol_out, answer)
        except TypeError as error:
            write_frame(protocol_out, {"id": request["id"], "ok": False, "calls": answer["calls"],
                                       "error": {"errorType": "Runtime.MarshalError", "errorMessage": str(error)}})


if __name__ == "__main__":
    main()
