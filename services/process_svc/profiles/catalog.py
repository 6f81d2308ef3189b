"""Loads the profile catalogue from YAML: an index naming one file per profile,
each validated against the schema (plan/specs.py).

Strict on purpose: an unknown key or output type is an error naming the file
and the field (`default.yaml: outputs[2].height: ...`), so a typo never
silently falls back to a default. The same validation reads a profile a
customer sends (`parse_profile_text`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import pydantic
import yaml

from services.process_svc.plan.specs import OUTPUT_SPECS, AudioSpec, PerTitleOption, Profile, VideoSettings
from services.shared.errors import InvalidArgument

PROFILES_DIR = Path(__file__).parent
DEFAULT_PROFILE = "default"


class ProfileError(InvalidArgument, ValueError):
    """A profile document that does not follow the schema; the message names its origin and the field."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems) or (message,)


class UnknownProfile(InvalidArgument):
    def __init__(self, name: str, available: Iterable[str]) -> None:
        names = ", ".join(sorted(available)) or "none"
        super().__init__(f"unknown profile {name!r}; available profiles: {names}")
        self.name = name


class ProfileCatalog:
    def __init__(self, profiles: Iterable[Profile]) -> None:
        self._profiles: dict[str, Profile] = {}
        for profile in profiles:
            if profile.name in self._profiles:
                raise ProfileError(f"two profiles are named {profile.name!r}")
            self._profiles[profile.name] = profile

    @classmethod
    def load(cls, directory: Path = PROFILES_DIR, *, output_types: Collection[str] | None = None) -> ProfileCatalog:
        """output_types: the types the caller can produce (the transcoder: its executors); a profile
        with any other is refused, naming the file and the output."""
        index_path = directory / "index.yaml"
        index = _read_yaml(index_path)
        files = index.get("profiles")
        if not isinstance(files, list) or not files:
            raise ProfileError(f"{index_path}: 'profiles' must list at least one profile file")
        return cls(parse_profile(_read_yaml(directory / str(name)), source=str(name), output_types=output_types)
                   for name in files)

    @property
    def names(self) -> list[str]:
        return list(self._profiles)

    def all(self) -> list[Profile]:
        return list(self._profiles.values())

    def get(self, name: str) -> Profile:
        """The profile called `name` (the default one when empty). Raises UnknownProfile."""
        try:
            return self._profiles[name or DEFAULT_PROFILE]
        except KeyError:
            raise UnknownProfile(name, self._profiles) from None


def parse_profile(document: Any, source: str = "<profile>", *,
                  output_types: Collection[str] | None = None) -> Profile:
    """A Profile from one profile document (already parsed YAML or JSON). Raises ProfileError naming
    `source` and each wrong field, e.g. "default.yaml: outputs[2].height: ..."."""
    if not isinstance(document, Mapping):
        raise ProfileError(f"{source}: expected a mapping at the top, got {type(document).__name__}")
    document = dict(document)
    try:
        profile = Profile.model_validate(document)
    except pydantic.ValidationError as invalid:
        problems = _problems(invalid, document)
        raise ProfileError(f"{source}: " + f"; {source}: ".join(problems), problems) from None
    if output_types is not None:
        for index, output in enumerate(profile.outputs):
            if output.type not in output_types:
                raise ProfileError(f"{source}: outputs[{index}].type: output type {output.type!r} cannot be made by "
                                   f"this transcoder yet; it makes {', '.join(sorted(output_types))}")
    return profile


def parse_profile_text(text: str, origin: str, *, output_types: Collection[str] | None = None) -> Profile:
    """A Profile from YAML (or JSON) text, e.g. one a customer sent; `origin` names it in errors."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProfileError(f"{origin}: not valid YAML: {error}") from None
    return parse_profile(document, origin, output_types=output_types)


def _problems(invalid: pydantic.ValidationError, document: Mapping[str, Any]) -> list[str]:
    """One line per mistake: the field's path as the document spells it, and what is wrong."""
    defaults = document.get("video_defaults")
    outputs = document.get("outputs")
    wrong_defaults = {str(error["loc"][1]) for error in invalid.errors()
                      if len(error["loc"]) == 2 and error["loc"][0] == "video_defaults"}
    errors = invalid.errors()
    problems = []
    for error in errors:
        loc = error["loc"]
        if _inherited(loc, outputs, defaults, wrong_defaults):
            continue  # a wrong default, reported once at video_defaults rather than once per output
        if error["type"] == "too_short" and any(other["loc"][:len(loc)] == loc and len(other["loc"]) > len(loc)
                                                for other in errors):
            continue  # "too short" only because its items failed, which are reported
        path, explained = _path(loc), _explain(error, loc)
        model = _model_at(loc)
        field, _, rest = explained.partition(": ")
        if error["type"] == "value_error" and rest and model is not None and field in _keys(model):
            path, explained = f"{path}.{field}" if path else field, rest  # a check naming its field
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path += ".type"
        problems.append(f"{path}: {explained}" if path else explained)
    return problems


def _path(loc: tuple[int | str, ...]) -> str:
    """('outputs', 2, 'video', 'maxrate') -> 'outputs[2].maxrate' (the union's tag is not in the document)."""
    path = ""
    for position, part in enumerate(loc):
        if position == 2 and loc[0] == "outputs" and part in OUTPUT_SPECS:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _inherited(loc: tuple[int | str, ...], outputs: Any, defaults: Any, wrong_defaults: set[str]) -> bool:
    if len(loc) != 4 or loc[0] != "outputs" or not isinstance(loc[1], int) or str(loc[3]) not in wrong_defaults:
        return False
    output = outputs[loc[1]] if isinstance(outputs, list) and loc[1] < len(outputs) else {}
    return isinstance(defaults, Mapping) and isinstance(output, Mapping) and loc[3] not in output


def _explain(error: Any, loc: tuple[int | str, ...]) -> str:
    kind = error["type"]
    if kind == "union_tag_invalid":
        return (f"unknown output type {error['ctx']['tag']!r}; the types are "
                f"{', '.join(OUTPUT_SPECS)} (docs/transcoding-profiles.md)")
    if kind == "union_tag_not_found":
        return f"each output needs a 'type': one of {', '.join(OUTPUT_SPECS)}"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        accepted = sorted(_keys(model)) if model else []
        return f"unknown key; accepted: {', '.join(accepted)}" if accepted else "unknown key"
    if kind == "missing" and len(loc) == 4 and loc[0] == "outputs" and loc[2] == "video":
        return "required: set it on the output or in video_defaults"
    if kind == "missing":
        return "required"
    if kind == "too_short" and loc == ("outputs",):
        return "must list at least one output"
    if kind == "multiple_of" and error["ctx"].get("multiple_of") == 2:
        return f"must be even; got {error['input']!r}"
    if kind == "string_pattern_mismatch":
        return f"must be lower-case letters, digits, '-' or '_' (at most 64), starting with a letter or digit; " \
               f"got {error['input']!r}"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    return f"{message[0].lower()}{message[1:]}; got {error['input']!r}" if _shows_input(error) else message


def _shows_input(error: Any) -> bool:
    return not isinstance(error.get("input"), (dict, list)) and error["type"] not in ("value_error", "assertion_error")


def _keys(model: type[pydantic.BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def _model_at(loc: tuple[int | str, ...]) -> type[pydantic.BaseModel] | None:
    """The schema model that holds the field at `loc` (its parent's path), for listing accepted keys."""
    if loc == ():
        return Profile
    if loc[0] == "outputs" and len(loc) == 3 and str(loc[2]) in OUTPUT_SPECS:
        return OUTPUT_SPECS[str(loc[2])]
    if len(loc) == 1 and loc[0] in ("video_defaults", "audio", "per_title"):
        return {"video_defaults": VideoSettings, "audio": AudioSpec, "per_title": PerTitleOption}[str(loc[0])]
    return None


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ProfileError(f"profile file {path} does not exist") from None
    except yaml.YAMLError as error:
        raise ProfileError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, Mapping):
        raise ProfileError(f"{path}: expected a mapping at the top")
    return document
