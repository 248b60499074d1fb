"""The template's Lambda functions, each run by worker processes (``worker.py``) as Lambda runs them.

A function's spec comes from its ``AWS::Lambda::Function`` resource: handler, timeout, memory, environment (every
reference resolved) and its role, whose policy documents (inline, the template's managed policies and
``AWS::IAM::Policy`` resources naming it, and the AWS managed policies the twin knows) are what the worker
authorizes its calls against. Workers start on first use (a cold start) and stay warm; up to ``concurrency``
run side by side; one that overruns its timeout is killed, as Lambda does.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InfraError
from .template import ACCOUNT_ID, Template, Unresolved
from .worker import read_frame, write_frame

log = logging.getLogger("twin.functions")
ROOT = Path(__file__).resolve().parents[2]
AWS_MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {"Statement": [{
        "Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": "*"}]},
    "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess": {"Statement": [{
        "Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                                      "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"],
        "Resource": "*"}]},
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": {"Statement": [{
        "Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                                      "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": "*"}]},
}
"""The AWS managed policies the twin knows the documents of (others are reported and grant nothing here)."""


class InvokeError(InfraError, RuntimeError):
    """The function failed (its error, a timeout, or a crash); ``payload`` is Lambda's error object."""

    def __init__(self, function: str, payload: dict[str, Any]) -> None:
        self.payload = payload
        super().__init__(f"{function}: {payload.get('errorType')}: {payload.get('errorMessage')}")


@dataclass
class FunctionSpec:
    logical: str
    name: str
    arn: str
    handler: str
    timeout_s: float
    memory_mb: int
    environment: dict[str, str]
    role_arn: str
    documents: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)


def role_documents(template: Template, role_logical: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The identity policies of a role of the template, resolved; and what the twin could not include."""
    problems: list[str] = []
    role = template.resources.get(role_logical) or {}
    props = template.resolve(role.get("Properties") or {})
    documents = [p["PolicyDocument"] for p in props.get("Policies") or []]
    role_name = template.physical.get(role_logical)
    for logical, resource in template.of_type("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        try:
            policy = template.resolve(resource.get("Properties") or {})
        except Unresolved as error:
            problems.append(f"{logical}: {error}")
            continue
        if role_name in (policy.get("Roles") or []):
            documents.append(policy["PolicyDocument"])
    managed = {template.physical.get(name): name for name, _ in template.of_type("AWS::IAM::ManagedPolicy")}
    for arn in props.get("ManagedPolicyArns") or []:
        if arn in managed:
            continue  # counted above through its Roles, or:
        if arn in AWS_MANAGED:
            documents.append(AWS_MANAGED[arn])
        else:
            problems.append(f"managed policy {arn}: its document is unknown to the twin (grants nothing here)")
    return documents, problems


def function_specs(template: Template) -> dict[str, FunctionSpec]:
    specs: dict[str, FunctionSpec] = {}
    for logical, resource in template.of_type("AWS::Lambda::Function"):
        if logical not in template.physical:
            continue
        raw = resource.get("Properties") or {}
        problems: list[str] = []
        environment: dict[str, str] = {}
        for key, value in ((raw.get("Environment") or {}).get("Variables") or {}).items():
            try:
                resolved = template.resolve({key: value})  # AWS::NoValue drops the variable
            except Unresolved as error:
                problems.append(f"environment {key}: {error}")
                continue
            if key in resolved:
                environment[key] = str(resolved[key])
        role = raw.get("Role")
        role_logical = None
        if isinstance(role, dict):
            role_logical = (role.get("Fn::GetAtt") or [None])[0] if "Fn::GetAtt" in role else role.get("Ref")
        documents, role_problems = role_documents(template, role_logical) if role_logical else ([], [
            f"role {role!r} is not a role of the template: nothing is allowed"])
        props = template.resolve({k: v for k, v in raw.items() if k not in ("Environment",)})
        specs[logical] = FunctionSpec(
            logical=logical, name=template.physical[logical], arn=template.attributes[logical]["Arn"],
            handler=str(props.get("Handler", "")), timeout_s=float(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)), environment=environment, role_arn=str(props.get("Role")),
            documents=documents, problems=problems + role_problems)
    return specs


class Worker:
    """One warm process of one function."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str], output: Callable[[str, str], None]) -> None:
        self.spec = spec
        started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "-m", "infra.twin.worker"], cwd=ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        threading.Thread(target=self._pump, args=(output,), daemon=True, name=f"log-{spec.name}").start()
        assert self.process.stdout is not None
        ready = read_frame(self.process.stdout)
        if ready is None:
            raise InvokeError(spec.name, {"errorType": "Runtime.ExitError", "errorMessage": "worker died at start"})
        self.ready = ready
        self.init_s = time.perf_counter() - started
        self.invocations = 0

    def _pump(self, output: Callable[[str, str], None]) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            output(self.spec.name, line.decode(errors="replace").rstrip())

    def invoke(self, event: Any, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        request_id = str(uuid.uuid4())
        write_frame(self.process.stdin, {"id": request_id, "request_id": request_id, "event": event,
                                         "timeout_s": timeout_s})
        timer = threading.Timer(timeout_s + 1.0, self.kill)
        timer.start()
        try:
            answer = read_frame(self.process.stdout)
        finally:
            timer.cancel()
        self.invocations += 1
        if answer is None:
            self.kill()
            return {"ok": False, "calls": [], "error": {
                "errorType": "Sandbox.Timedout" if self.process.returncode in (-9, None) else "Runtime.ExitError",
                "errorMessage": f"Task timed out after {timeout_s:.2f} seconds or the process exited"}}
        answer_dict: dict[str, Any] = answer
        return answer_dict

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class Functions:
    """The functions of the stack by logical id, name and ARN; ``invoke`` runs one synchronously."""

    def __init__(self, specs: dict[str, FunctionSpec], *, base_env: dict[str, str], policy_dir: Path,
                 on_calls: Callable[[FunctionSpec, list[dict[str, Any]]], None], function_log: Path,
                 concurrency: int = 1) -> None:
        self.specs = specs
        self.base_env = base_env
        self.policy_dir = policy_dir
        self.on_calls = on_calls
        self.concurrency = concurrency
        self._idle: dict[str, list[Worker]] = {logical: [] for logical in specs}
        self._running: dict[str, int] = dict.fromkeys(specs, 0)
        self._cond = threading.Condition()
        self._log = function_log.open("a", encoding="utf-8", buffering=1)
        self._log_lock = threading.Lock()
        self.stats: dict[str, dict[str, float]] = {logical: {"invocations": 0, "errors": 0, "cold_starts": 0}
                                                   for logical in specs}
        self._workers: list[Worker] = []
        self._closed = False
        policy_dir.mkdir(parents=True, exist_ok=True)
        for spec in specs.values():
            (policy_dir / f"{spec.logical}.json").write_text(json.dumps({
                "documents": spec.documents, "role_arn": spec.role_arn, "account": ACCOUNT_ID,
                "region": base_env["AWS_REGION"]}))

    def find(self, key: str) -> FunctionSpec | None:
        """By logical id, function name, ARN (an alias or version suffix ignored)."""
        if key in self.specs:
            return self.specs[key]
        name = key.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in key else key
        for spec in self.specs.values():
            if name in (spec.name, spec.logical):
                return spec
        return None

    def _output(self, function: str, line: str) -> None:
        with self._log_lock:
            if not self._log.closed:  # a worker's last words after the twin stopped go nowhere
                self._log.write(f"{time.strftime('%H:%M:%S')} {function} {line}\n")

    def _env(self, spec: FunctionSpec) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
               "LANG": "C.UTF-8", "TZ": "UTC", **self.base_env, **spec.environment}
        env.update({
            "AWS_LAMBDA_FUNCTION_NAME": spec.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11", "LAMBDA_TASK_ROOT": str(ROOT),
            "TWIN_HANDLER": spec.handler, "TWIN_FUNCTION_ARN": spec.arn, "TWIN_ROLE_ARN": spec.role_arn,
            "TWIN_POLICY_FILE": str(self.policy_dir / f"{spec.logical}.json"),
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR", "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "AWS_XRAY_SDK_ENABLED": "false",
        })
        return env

    def _take(self, spec: FunctionSpec) -> Worker | None:
        with self._cond:
            while True:
                if self._closed:
                    raise InvokeError(spec.name, {"errorType": "TwinStopped", "errorMessage": "the twin is stopping"})
                idle = self._idle[spec.logical]
                while idle and not idle[-1].alive:
                    idle.pop()
                if idle:
                    self._running[spec.logical] += 1
                    return idle.pop()
                if self._running[spec.logical] < self.concurrency:
                    self._running[spec.logical] += 1
                    return None  # start a new one
                self._cond.wait()

    def _give_back(self, spec: FunctionSpec, worker: Worker | None) -> None:
        with self._cond:
            self._running[spec.logical] -= 1
            if worker is not None and worker.alive and not self._closed:
                self._idle[spec.logical].append(worker)
            self._cond.notify_all()

    def invoke(self, key: str, event: Any) -> Any:
        """The function's result; ``InvokeError`` when it failed."""
        spec = self.find(key)
        if spec is None:
            raise InvokeError(key, {"errorType": "ResourceNotFoundException", "errorMessage": f"no function {key}"})
        worker = self._take(spec)
        try:
            if worker is None:
                worker = Worker(spec, self._env(spec), self._output)
                self._workers.append(worker)
                self.stats[spec.logical]["cold_starts"] += 1
                if worker.ready.get("calls"):
                    self.on_calls(spec, worker.ready["calls"])
                if worker.ready.get("init_error"):
                    log.error("%s: init failed: %s", spec.name, worker.ready["init_error"]["errorMessage"])
            answer = worker.invoke(event, spec.timeout_s)
        except BaseException:
            if worker is not None:
                worker.kill()
            self._give_back(spec, None)
            raise
        self._give_back(spec, worker)
        self.stats[spec.logical]["invocations"] += 1
        if answer.get("calls"):
            self.on_calls(spec, answer["calls"])
        if not answer.get("ok"):
            self.stats[spec.logical]["errors"] += 1
            raise InvokeError(spec.name, answer.get("error") or {})
        return answer.get("result")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for worker in self._workers:
            if worker.process.stdin is not None:
                try:
                    worker.process.stdin.close()
                except OSError:
                    pass
        deadline = time.time() + 3
        for worker in self._workers:
            try:
                worker.process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                worker.kill()
        with self._log_lock:
            self._log.close()
