"""Template pieces from several modules, merged into one template without silently overwriting each other.

A *fragment* is a dict with any of the template's sections (``Parameters``, ``Conditions``, ``Resources``,
``Outputs``) and two sections about the functions, which ``infra.template.build_template`` applies after it has
built them:

* ``Environment``: ``{<function logical id or "*">: {VARIABLE: value}}``, added to the function's variables;
* ``Policies``: ``{<function logical id or "*">: [IAM statement, ...]}``, added to the function's own role.

A contributor is a function returning a fragment (``infra.template.CONTRIBUTORS``). Two fragments naming one key
of a section is an error (``FragmentConflict``), not a merge: the template must say what each piece means.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from .errors import InfraError

Fragment = dict[str, Any]
SECTIONS: Final = ("Parameters", "Conditions", "Resources", "Outputs")
FUNCTION_SECTIONS: Final = ("Environment", "Policies")
ALL_FUNCTIONS: Final = "*"


class FragmentConflict(InfraError, ValueError):
    """Two template pieces define the same parameter, condition, resource, output or variable."""


def merge(fragments: Iterable[Fragment]) -> Fragment:
    """One fragment holding every section of ``fragments``; a key defined twice raises ``FragmentConflict``."""
    merged: Fragment = {section: {} for section in (*SECTIONS, *FUNCTION_SECTIONS)}
    for fragment in fragments:
        unknown = set(fragment) - set(SECTIONS) - set(FUNCTION_SECTIONS)
        if unknown:
            raise FragmentConflict(f"unknown template section(s): {', '.join(sorted(unknown))}")
        for section in SECTIONS:
            target = merged[section]
            for key, value in (fragment.get(section) or {}).items():
                if key in target:
                    raise FragmentConflict(f"{section}.{key} is defined twice")
                target[key] = value
        environment = merged["Environment"]
        for function, variables in (fragment.get("Environment") or {}).items():
            target = environment.setdefault(function, {})
            for name, value in variables.items():
                if name in target:
                    raise FragmentConflict(f"Environment.{function}.{name} is defined twice")
                target[name] = value
        policies = merged["Policies"]
        for function, statements in (fragment.get("Policies") or {}).items():
            policies.setdefault(function, []).extend(statements)
    return merged
