"""Reading a process's settings from its environment, with every problem named by variable.

Each process (collector, enrich, a sink) has one pydantic-settings class, read once at its
entry point. ``load`` builds it and turns a failure into ``InvalidSettingsError``, whose
``problems`` name the environment variable of each field in error (``SNOWPLOW_SINK_INDEX__NAME``)
with what was received, shortened, and never the value of a secret.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import pydantic
import pydantic_settings

Settings = TypeVar("Settings", bound=pydantic_settings.BaseSettings)

SECRET_FIELDS = frozenset({"password", "apikey", "api_key", "token"})
_SHOWN_CHARS = 60


class InvalidSettingsError(ValueError):
    """The settings cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, component: str, problems: list[str]) -> None:
        super().__init__(f"invalid {component} settings:\n  " + "\n  ".join(problems))
        self.problems = problems


def load(settings_class: type[Settings], *, component: str, **overrides: Any) -> Settings:
    """The settings from the environment; ``overrides`` (from flags) win over it."""
    try:
        return settings_class(**overrides)
    except pydantic.ValidationError as exc:
        problems = [describe(settings_class, error) for error in exc.errors()]
        raise InvalidSettingsError(component, problems) from exc
    except pydantic_settings.SettingsError as exc:
        # The environment source stops at the first value that is not valid JSON, and names
        # only the top-level field it was filling.
        field = re.search(r'field "(\w+)"', str(exc))
        name = _prefix(settings_class) + (field.group(1).upper() if field else "*")
        problem = f"{name} (or one of {name}__*): not valid JSON, expected a JSON list or object"
        raise InvalidSettingsError(component, [problem]) from exc


def env_name(settings_class: type[pydantic.BaseModel], loc: tuple[int | str, ...]) -> str:
    """The environment variable that sets the field at ``loc`` of a validation error."""
    return _split_loc(settings_class, loc)[0]


def describe(settings_class: type[pydantic.BaseModel], error: Any) -> str:
    """``VARIABLE[inside]: message (got 'value')`` for one pydantic error."""
    name, inside = _split_loc(settings_class, error["loc"])
    where = name + "".join(f"[{part!r}]" for part in inside if part != "[key]")
    if SECRET_FIELDS.intersection(str(part) for part in error["loc"]):
        received = "(hidden)"
    else:
        received = repr(error.get("input"))
        if len(received) > _SHOWN_CHARS:
            received = received[: _SHOWN_CHARS - 3] + "..."
    return f"{where}: {error['msg']} (got {received})"


def _split_loc(
    settings_class: type[pydantic.BaseModel], loc: tuple[int | str, ...]
) -> tuple[str, tuple[int | str, ...]]:
    # Walk down the nested groups as far as the location names their fields; what is left
    # points inside a list or mapping value.
    names: list[str] = []
    model: type[pydantic.BaseModel] | None = settings_class
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            break
        names.append(part)
        annotation = model.model_fields[part].annotation
        is_group = isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)
        model = annotation if is_group else None  # type: ignore[assignment]
    delimiter = str(settings_class.model_config.get("env_nested_delimiter") or "__")
    return _prefix(settings_class) + delimiter.join(names).upper(), loc[len(names) :]


def _prefix(settings_class: type[pydantic.BaseModel]) -> str:
    return str(settings_class.model_config.get("env_prefix", ""))
