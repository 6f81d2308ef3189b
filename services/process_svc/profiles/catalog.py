"""Loads the profile catalogue from YAML: an index naming one file per profile.

Strict on purpose: an unknown key or output type is an error naming the file
and the output, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from services.process_svc.plan.encoders import audio_encoder, rendition_problems
from services.process_svc.plan.model import AudioSpec, Profile, RenditionSpec
from services.process_svc.plan.per_title import METRICS, PerTitleSpec
from services.shared.errors import InvalidArgument

PROFILES_DIR = Path(__file__).parent
DEFAULT_PROFILE = "default"

# Output types the schema reserves; only these are built so far.
SUPPORTED_OUTPUT_TYPES = ("video",)
PLANNED_OUTPUT_TYPES = ("audio", "thumbnail", "hls")

# YAML key -> RenditionSpec field, where the YAML speaks ffmpeg's words.
_VIDEO_KEYS = {"maxrate": "max_bitrate", "bufsize": "buffer_size"}
_BITRATE_FIELDS = {"max_bitrate", "buffer_size", "bitrate"}
# Profile and rendition names travel in requests and become parts of storage keys.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class ProfileError(ValueError):
    """A profile file that does not follow the schema."""


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
    def load(cls, directory: Path = PROFILES_DIR) -> ProfileCatalog:
        index_path = directory / "index.yaml"
        index = _read_yaml(index_path)
        files = index.get("profiles")
        if not isinstance(files, list) or not files:
            raise ProfileError(f"{index_path}: 'profiles' must list at least one profile file")
        return cls(parse_profile(_read_yaml(directory / str(name)), source=str(name)) for name in files)

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


def parse_profile(document: Mapping[str, Any], source: str = "<profile>") -> Profile:
    """A Profile from one profile document (already parsed YAML)."""
    _check_keys(document, {"name", "description", "video_defaults", "audio", "outputs", "per_title"}, source)
    name = document.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ProfileError(f"{source}: 'name' must be lower-case letters, digits, '-' or '_'; got {name!r}")
    defaults = document.get("video_defaults") or {}
    outputs = document.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise ProfileError(f"{source}: 'outputs' must list at least one output")
    renditions = []
    for number, output in enumerate(outputs, start=1):
        where = f"{source}, output {number}"
        if not isinstance(output, Mapping):
            raise ProfileError(f"{where}: expected a mapping, got {output!r}")
        kind = output.get("type")
        if kind not in SUPPORTED_OUTPUT_TYPES:
            planned = " (planned, not built yet)" if kind in PLANNED_OUTPUT_TYPES else ""
            raise ProfileError(f"{where}: output type {kind!r}{planned} is not supported; "
                               f"supported: {', '.join(SUPPORTED_OUTPUT_TYPES)}")
        merged = {**defaults, **{k: v for k, v in output.items() if k != "type"}}
        renditions.append(_build(RenditionSpec, merged, _VIDEO_KEYS, where))
    names = [r.name for r in renditions]
    for rendition_name in names:  # part of each rendition's storage key and file name
        if not _NAME.fullmatch(rendition_name):
            raise ProfileError(f"{source}: rendition 'name' must be lower-case letters, digits, '-' or '_'; "
                               f"got {rendition_name!r}")
    if len(set(names)) != len(names):
        raise ProfileError(f"{source}: rendition names must be unique; got {names}")
    audio = document.get("audio")
    per_title = document.get("per_title")
    audio_spec = _build(AudioSpec, audio, {}, f"{source}, audio") if audio else None
    if audio_spec is not None:
        containers = audio_encoder(audio_spec.encoder).containers
        for number, rendition in enumerate(renditions, start=1):
            if rendition.container not in containers:
                raise ProfileError(f"{source}, output {number}: container {rendition.container!r} cannot carry the "
                                   f"profile's {audio_spec.codec} audio; {audio_spec.codec} goes in "
                                   f"{' or '.join(containers)}")
    return Profile(
        name=name,
        description=str(document.get("description", "")),
        renditions=tuple(renditions),
        audio=audio_spec,
        per_title=parse_per_title(per_title, names, f"{source}, per_title") if per_title is not None else None,
    )


def parse_per_title(values: Any, rungs: list[str], where: str) -> PerTitleSpec:
    """The `per_title:` option: a quality target per rung (dB of `metric`) and the method's knobs."""
    if not isinstance(values, Mapping):
        raise ProfileError(f"{where}: expected a mapping, got {values!r}")
    targets = values.get("targets")
    if not isinstance(targets, Mapping) or not targets:
        raise ProfileError(f"{where}: 'targets' must map rung names to a quality in dB, e.g. {{720p: 38}}")
    unknown = [str(name) for name in targets if name not in rungs]
    if unknown:
        raise ProfileError(f"{where}: targets name rungs the profile does not have: {', '.join(unknown)}; "
                           f"its rungs: {', '.join(rungs)}")
    for name, target in targets.items():
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 10 <= target <= 99:
            raise ProfileError(f"{where}: target of {name} must be a number of dB between 10 and 99, got {target!r}")
    knobs = {k: v for k, v in values.items() if k != "targets"}
    known = {f.name: f for f in fields(PerTitleSpec) if f.name != "targets"}
    wrong = sorted(set(knobs) - set(known))
    if wrong:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(wrong)}; accepted: targets, {', '.join(sorted(known))}")
    converted: dict[str, Any] = {}
    for key, value in knobs.items():
        try:
            converted[key] = _convert(key, known[key].type, value)
        except (TypeError, ValueError) as error:
            raise ProfileError(f"{where}: {key}: {error}") from None
    built = PerTitleSpec(targets=tuple((str(k), float(v)) for k, v in targets.items()), **converted)
    problems = []
    if built.metric not in METRICS:
        problems.append(f"metric must be one of {', '.join(METRICS)}, got {built.metric!r}")
    if not 0 <= built.min_crf <= built.first_crf <= built.max_crf <= 51:
        problems.append("CRFs must satisfy 0 <= min_crf <= first_crf <= max_crf <= 51")
    if built.probe_rounds < 1 or built.window_seconds <= 0 or not 0 < built.sample_share <= 1:
        problems.append("probe_rounds >= 1, window_seconds > 0 and 0 < sample_share <= 1")
    if built.cap_factor < 1 or built.rung_step < 1:
        problems.append("cap_factor and rung_step must be at least 1")
    if problems:
        raise ProfileError(f"{where}: {'; '.join(problems)}")
    return built


def parse_bitrate(value: Any) -> int:
    """Bits per second from 128000, "128k", "3.5M"."""
    if isinstance(value, bool):
        raise ValueError(f"not a bitrate: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(value))
    if not match:
        raise ValueError(f"not a bitrate: {value!r} (write e.g. 900k or 3.5M)")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return round(float(match.group(1)) * scale)


def _build(cls: type, values: Mapping[str, Any], renames: Mapping[str, str], where: str) -> Any:
    """An instance of the dataclass `cls` from YAML values, converted and checked."""
    if not isinstance(values, Mapping):
        raise ProfileError(f"{where}: expected a mapping, got {values!r}")
    known = {f.name: f for f in fields(cls)}
    yaml_names = {renames.get(k, k): k for k in values}
    unknown = [yaml_names[k] for k in yaml_names if k not in known]
    if unknown:
        accepted = sorted({*(k for k in known if k not in renames.values()), *renames})
        raise ProfileError(f"{where}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    converted: dict[str, Any] = {}
    for field_name, yaml_name in yaml_names.items():
        value = values[yaml_name]
        try:
            converted[field_name] = _convert(field_name, known[field_name].type, value)
        except (TypeError, ValueError) as error:
            raise ProfileError(f"{where}: {yaml_name}: {error}") from None
    try:
        spec = cls(**converted)
    except TypeError as error:  # a required key is missing
        raise ProfileError(f"{where}: {error}") from None
    _check_ranges(spec, where)
    return spec


def _convert(name: str, annotation: Any, value: Any) -> Any:
    if name in _BITRATE_FIELDS:
        return parse_bitrate(value)
    kind = str(annotation)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    return str(value)


def _check_ranges(spec: Any, where: str) -> None:
    problems = []
    if isinstance(spec, RenditionSpec):
        if spec.height < 2 or spec.height % 2:
            problems.append(f"height must be even and at least 2, got {spec.height}")
        problems.extend(rendition_problems(spec))
        if spec.max_bitrate <= 0 or spec.buffer_size <= 0:
            problems.append("maxrate and bufsize must be positive")
        if spec.keyint_seconds <= 0:
            problems.append("keyint_seconds must be positive")
    if isinstance(spec, AudioSpec):
        if spec.bitrate <= 0:
            problems.append("bitrate must be positive")
        if spec.max_channels not in (1, 2):
            problems.append(f"max_channels must be 1 or 2, got {spec.max_channels}")
        try:
            encoder = audio_encoder(spec.encoder)
        except ValueError as error:
            problems.append(f"encoder: {error}")
        else:
            if spec.codec != encoder.codec:
                problems.append(f"codec: {spec.encoder} makes {encoder.codec}, not {spec.codec!r}")
            if encoder.sample_rates and spec.sample_rate not in encoder.sample_rates:
                problems.append(f"sample_rate: {spec.encoder} runs at {' or '.join(map(str, encoder.sample_rates))} "
                                f"Hz, not {spec.sample_rate}")
    if problems:
        raise ProfileError(f"{where}: {'; '.join(problems)}")


def _check_keys(document: Mapping[str, Any], allowed: set[str], source: str) -> None:
    if not isinstance(document, Mapping):
        raise ProfileError(f"{source}: expected a mapping at the top")
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise ProfileError(f"{source}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}")


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
