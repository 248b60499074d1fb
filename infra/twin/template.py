"""The deployed template, read as CloudFormation reads it: parameters, conditions and intrinsic functions.

The twin never guesses a name: every value a function, rule or mapping gets is the template's own expression,
resolved here against what the twin created (``Ref`` → the physical id, ``Fn::GetAtt`` → the attribute,
``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::If`` and the condition functions, pseudo
parameters). A reference to something that was not created raises ``Unresolved`` naming it, so a wrong wiring in
the template shows as an error instead of a silently empty value.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InfraError

ACCOUNT_ID = "123456789012"
"""moto's default account: the ARNs the twin makes and the ones moto makes agree."""
NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class StackTemplateError(InfraError, ValueError):
    """The template cannot be read or holds something CloudFormation would refuse."""


class Unresolved(StackTemplateError):
    """A reference to a resource, attribute or parameter the twin does not have."""


@dataclass
class Template:
    """One CloudFormation template (JSON) and the stack it is deployed as."""

    body: dict[str, Any]
    stack: str
    region: str = "us-east-1"
    parameters: dict[str, str] = field(default_factory=dict)
    physical: dict[str, Any] = field(default_factory=dict)
    """Logical id → the value of ``Ref``."""
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Logical id → ``Fn::GetAtt`` attributes."""

    @classmethod
    def load(cls, path: Path, stack: str, region: str, overrides: Mapping[str, str] | None = None) -> Template:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise StackTemplateError(f"cannot read {path}: {error}") from None
        if not isinstance(body, dict) or not isinstance(body.get("Resources"), dict):
            raise StackTemplateError(f"{path}: not a CloudFormation template (no Resources)")
        if body.get("Transform"):
            raise StackTemplateError(f"{path}: has a Transform ({body['Transform']}); the twin runs plain "
                                     "CloudFormation (`make package` writes it)")
        template = cls(body, stack, region)
        template.parameters = template._parameters(dict(overrides or {}))
        return template

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.body["Resources"]
        return resources

    def of_type(self, *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical, resource in self.resources.items():
            if resource.get("Type") in types and self.condition_holds(resource):
                yield logical, resource

    def _parameters(self, overrides: dict[str, str]) -> dict[str, str]:
        declared: dict[str, Any] = self.body.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise StackTemplateError(f"parameters not in the template: {', '.join(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                values[name] = overrides[name]
            elif "Default" in spec:
                default = spec["Default"]
                values[name] = ",".join(default) if isinstance(default, list) else str(default)
            else:
                raise StackTemplateError(f"parameter {name} has no default: give it (--parameter {name}=...)")
            allowed = spec.get("AllowedValues")
            if allowed and values[name] not in [str(v) for v in allowed]:
                raise StackTemplateError(f"parameter {name}={values[name]!r} is not one of {allowed}")
        return values

    # ------------------------------------------------------------------------------------------- pseudo

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT_ID}:stack/{self.stack}/twin",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }.get(name)

    # ------------------------------------------------------------------------------------------- conditions

    def condition(self, name: str) -> bool:
        conditions = self.body.get("Conditions") or {}
        if name not in conditions:
            raise Unresolved(f"condition {name} is not defined")
        return bool(self.resolve(conditions[name]))

    def condition_holds(self, resource: Mapping[str, Any]) -> bool:
        name = resource.get("Condition")
        return True if not name else self.condition(name)

    # ------------------------------------------------------------------------------------------- references

    def dependencies(self, value: Any) -> set[str]:
        """The logical ids a value refers to (``Ref``, ``GetAtt``, ``Sub`` variables), for creation order."""
        found: set[str] = set()
        if isinstance(value, dict):
            if len(value) == 1:
                key, arg = next(iter(value.items()))
                if key == "Ref" and isinstance(arg, str) and arg in self.resources:
                    found.add(arg)
                elif key == "Fn::GetAtt":
                    target = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
                    if target in self.resources:
                        found.add(target)
                elif key == "Fn::Sub":
                    text = arg[0] if isinstance(arg, list) else arg
                    for variable in _SUB_VARIABLE.findall(text if isinstance(text, str) else ""):
                        head = variable.split(".", 1)[0]
                        if head in self.resources:
                            found.add(head)
            for item in value.values():
                found |= self.dependencies(item)
        elif isinstance(value, list):
            for item in value:
                found |= self.dependencies(item)
        return found

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name.startswith("AWS::"):
            value = self.pseudo(name)
            if value is None:
                raise Unresolved(f"unknown pseudo parameter {name}")
            return value
        if name in self.physical:
            return self.physical[name]
        if name in self.resources:
            raise Unresolved(f"Ref {name}: resource not created")
        raise Unresolved(f"Ref {name}: no such resource or parameter")

    def get_att(self, name: str, attribute: str) -> Any:
        if name not in self.resources:
            raise Unresolved(f"Fn::GetAtt {name}.{attribute}: no such resource")
        attributes = self.attributes.get(name)
        if attributes is None:
            raise Unresolved(f"Fn::GetAtt {name}.{attribute}: resource not created")
        if attribute not in attributes:
            raise Unresolved(f"Fn::GetAtt {name}.{attribute}: no such attribute (has {', '.join(sorted(attributes))})")
        return attributes[attribute]

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function evaluated (``AWS::NoValue`` drops the key or item)."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            key, arg = next(iter(value.items()))
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, arg)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def sub(self, arg: Any) -> str:
        text, variables = (arg[0], self.resolve(arg[1])) if isinstance(arg, list) else (arg, {})

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                head, attribute = name.split(".", 1)
                return str(self.get_att(head, attribute))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text)


def _get_att(template: Template, arg: Any) -> Any:
    name, attribute = (arg if isinstance(arg, list) else str(arg).split(".", 1))
    return template.get_att(name, template.resolve(attribute))


def _join(template: Template, arg: Any) -> str:
    separator, items = arg
    return str(separator).join(str(item) for item in template.resolve(items))


def _select(template: Template, arg: Any) -> Any:
    index, items = arg
    return template.resolve(items)[int(template.resolve(index))]


def _split(template: Template, arg: Any) -> list[str]:
    separator, text = arg
    return str(template.resolve(text)).split(separator)


def _if(template: Template, arg: Any) -> Any:
    name, yes, no = arg
    return template.resolve(yes if template.condition(name) else no)


def _find_in_map(template: Template, arg: Any) -> Any:
    name, top, second = (template.resolve(item) for item in arg)
    try:
        return template.body["Mappings"][name][top][second]
    except KeyError:
        raise Unresolved(f"Fn::FindInMap {name}/{top}/{second}: not in the template's Mappings") from None


def _import_value(template: Template, arg: Any) -> Any:
    raise Unresolved(f"Fn::ImportValue {template.resolve(arg)}: other stacks' exports are not in the twin")


_FUNCTIONS: dict[str, Any] = {
    "Ref": lambda t, arg: t.ref(arg),
    "Fn::GetAtt": _get_att,
    "Fn::Sub": lambda t, arg: t.sub(arg),
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::If": _if,
    "Fn::Equals": lambda t, arg: t.resolve(arg[0]) == t.resolve(arg[1]),
    "Fn::Not": lambda t, arg: not t.resolve(arg[0]),
    "Fn::And": lambda t, arg: all(t.resolve(item) for item in arg),
    "Fn::Or": lambda t, arg: any(t.resolve(item) for item in arg),
    "Condition": lambda t, arg: t.condition(arg),
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": lambda t, arg: base64.b64encode(str(t.resolve(arg)).encode()).decode(),
    "Fn::GetAZs": lambda t, arg: [f"{t.region}a", f"{t.region}b", f"{t.region}c"],
    "Fn::ImportValue": _import_value,
    "Fn::ToJsonString": lambda t, arg: json.dumps(t.resolve(arg)),
}


def creation_order(template: Template) -> list[str]:
    """Logical ids in an order where each comes after what it refers to (``DependsOn`` included)."""
    resources = template.resources
    graph: dict[str, set[str]] = {}
    for logical, resource in resources.items():
        needs = template.dependencies(resource.get("Properties") or {})
        depends = resource.get("DependsOn") or []
        needs |= set([depends] if isinstance(depends, str) else depends)
        graph[logical] = {name for name in needs if name in resources and name != logical}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise StackTemplateError(f"circular dependency: {' -> '.join((*path, name))}")
        state[name] = 1
        for other in sorted(graph[name]):
            visit(other, (*path, name))
        state[name] = 2
        order.append(name)

    for name in resources:
        visit(name, ())
    return order
