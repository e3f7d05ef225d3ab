"""Routing rules: which team gets which signal, from a YAML file a CX lead edits.

The file (a commented example ships as ``touchpoint.samples`` ``routing_rules.yaml``)::

    version: 1
    mode: first_match              # or all_match: every rule that matches routes the signal
    max_signal_age: 14d            # optional: older signals (backfills) open no case
    destinations:                  # where cases are announced; URLs and secrets can come from settings
      app-team-slack: {type: slack, rate_per_minute: 60}
      tickets: {type: webhook, url: "https://tickets.example.com/hooks/touchpoint"}
    rules:
      - name: app-detractors
        when: {touchpoint_any: [mobile_app], nps: detractor}
        team: mobile-app
        priority: high             # low | normal | high | urgent
        sla: 24h                   # 30m, 4h, 2d, 1w or seconds
        destinations: [app-team-slack]
    default:                       # optional: where signals that match no rule go (absent: nowhere)
      team: cx-triage
      sla: 3d

Every condition under ``when`` must hold; a list means "any of these". The
conditions are :data:`CONDITIONS`. The file is checked completely when it is
loaded: every mistake is reported with its line and what to write instead
(:class:`RulesError`), and :class:`RulesSource` re-reads it when it changes,
keeping the last good rules when an edit is broken, so no restart is needed.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from touchpoint.core import metrics
from touchpoint.core.times import parse_duration, parse_timestamp
from touchpoint.schemas.action import PRIORITIES
from touchpoint.schemas.signal import CHANNELS, KINDS, kind_of, make_signal_id

log = logging.getLogger(__name__)
NPS_BANDS = ("detractor", "passive", "promoter")
SENTIMENTS = ("negative", "neutral", "positive")
NO_TOUCHPOINT = "other"  # what the tagger says when nothing is close (models/touchpoints.py)
MAX_ERRORS_SHOWN = 12

# condition -> what it tests (also the help text of errors and of `touchpoint route test`)
CONDITIONS: dict[str, str] = {
    "brand": "the signal's brand (any of)",
    "channel": f"the channel (any of {', '.join(CHANNELS)})",
    "source": "the source tool or site, e.g. typeform, zendesk, app_store (any of)",
    "kind": "direct or indirect",
    "touchpoint": "the primary touchpoint: the survey's hint, else the top tag (any of)",
    "touchpoint_any": "any touchpoint the text carries (any of)",
    "stage": "the journey stage (any of)",
    "nps": "NPS band: detractor (0-6), passive (7-8), promoter (9-10) (any of)",
    "csat_at_most": "a CSAT response (1-5) at or below this value",
    "ces_at_most": "a CES response (1-7) at or below this value",
    "sentiment": "sentiment label: negative, neutral, positive (any of)",
    "sentiment_score_at_most": "sentiment score (-1..1) at or below this value",
    "sentiment_score_at_least": "sentiment score (-1..1) at or above this value",
    "emotions": "carries any of these emotions",
    "language": "ISO 639-1 language code (any of)",
    "keywords": "any of these words or phrases in the redacted text (whole words, any case)",
    "regex": "a Python regular expression found in the redacted text",
    "open_case": "true: the customer has a case open now; false: none",
}


class RulesError(ValueError):
    """The rules file cannot be used; the message names each line at fault and the fix."""


@dataclass(frozen=True)
class Vocabulary:
    """The values a rule may name: the taxonomy's touchpoints and stages, the emotion labels."""

    touchpoints: frozenset[str]
    stages: frozenset[str]
    emotions: frozenset[str]


def load_vocabulary(taxonomy_path: str | None = None) -> Vocabulary:
    """The vocabulary of the taxonomy in use (the models' own files; imports the model package)."""
    from touchpoint.models.emotion import NAMES
    from touchpoint.models.touchpoints import OTHER, UNKNOWN_STAGE, Taxonomy

    taxonomy = Taxonomy.load(taxonomy_path)
    return Vocabulary(
        frozenset(taxonomy.ids) | {OTHER}, frozenset(taxonomy.stages) | {UNKNOWN_STAGE}, frozenset(NAMES)
    )


# ---------------------------------------------------------------- the file's shape


def _as_list(value: Any) -> Any:
    """A single value where a list is expected means a list of one."""
    return [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value


# condition -> (Vocabulary attribute, what its values are called in an error)
_VOCABULARY_OF = {
    "touchpoint": ("touchpoints", "touchpoint id (models/taxonomy.yaml)"),
    "touchpoint_any": ("touchpoints", "touchpoint id (models/taxonomy.yaml)"),
    "stage": ("stages", "journey stage"),
    "emotions": ("emotions", "emotion"),
}


def _check_known(values: Sequence[str] | None, known: Iterable[str], what: str) -> None:
    if values is None:
        return
    known = sorted(known)
    for value in values:
        if value not in known:
            close = difflib.get_close_matches(value, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"{value!r} is not a known {what}; {hint}known: {', '.join(known)}")


class When(BaseModel):
    """The conditions of one rule (see :data:`CONDITIONS`); all must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brand: list[str] | None = None
    channel: list[Literal[CHANNELS]] | None = None  # type: ignore[valid-type]
    source: list[str] | None = None
    kind: list[Literal[KINDS]] | None = None  # type: ignore[valid-type]
    touchpoint: list[str] | None = None
    touchpoint_any: list[str] | None = None
    stage: list[str] | None = None
    nps: list[Literal[NPS_BANDS]] | None = None  # type: ignore[valid-type]
    csat_at_most: float | None = Field(None, ge=1, le=5)
    ces_at_most: float | None = Field(None, ge=1, le=7)
    sentiment: list[Literal[SENTIMENTS]] | None = None  # type: ignore[valid-type]
    sentiment_score_at_most: float | None = Field(None, ge=-1, le=1)
    sentiment_score_at_least: float | None = Field(None, ge=-1, le=1)
    emotions: list[str] | None = None
    language: list[str] | None = None
    keywords: list[str] | None = None
    regex: str | None = None
    open_case: bool | None = None

    _lists = field_validator(
        "brand", "channel", "source", "kind", "touchpoint", "touchpoint_any", "stage", "nps", "sentiment",
        "emotions", "language", "keywords", mode="before",
    )(_as_list)  # fmt: skip

    @field_validator("brand", "source", "touchpoint", "touchpoint_any", "stage", "emotions", "language", "keywords")
    @classmethod
    def _not_empty(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and (not values or any(not str(v).strip() for v in values)):
            raise ValueError("give at least one non-empty value, or leave the condition out")
        return values

    @field_validator("touchpoint", "touchpoint_any", "stage", "emotions")
    @classmethod
    def _known(cls, values: list[str] | None, info: ValidationInfo) -> list[str] | None:
        vocabulary = (info.context or {}).get("vocabulary")
        if vocabulary:
            attribute, what = _VOCABULARY_OF[info.field_name]
            _check_known(values, getattr(vocabulary, attribute), what)
        return values

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _score_range_possible(self) -> "When":
        low, high = self.sentiment_score_at_least, self.sentiment_score_at_most
        if low is not None and high is not None and low > high:
            raise ValueError(f"sentiment_score_at_least ({low}) is above sentiment_score_at_most ({high}): nothing can match")
        return self


MAX_SLA = timedelta(days=366)


def _duration(value: Any) -> timedelta:
    sla = parse_duration(value, "sla")
    if sla > MAX_SLA:
        raise ValueError(f"sla {value!r} is longer than a year; write at most 366d")
    return sla


class Target(BaseModel):
    """Who gets a routed signal: a team, a priority, an SLA, and where the case is announced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str = Field(min_length=1, max_length=100)
    priority: Literal[PRIORITIES] = "normal"  # type: ignore[valid-type]
    sla: timedelta = timedelta(days=3)
    destinations: list[str] = []

    _sla = field_validator("sla", mode="before")(_duration)
    _destinations = field_validator("destinations", mode="before")(_as_list)


class Rule(Target):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    when: When = When()


class Destination(BaseModel):
    """An HTTP destination: a Slack-compatible incoming webhook, or a signed generic JSON webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["slack", "webhook"]
    url: str | None = Field(None, pattern=r"^https?://\S+$")
    rate_per_minute: float | None = Field(None, gt=0)
    timeout_s: float = Field(10.0, gt=0, le=120)


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    mode: Literal["first_match", "all_match"] = "first_match"
    max_signal_age: timedelta | None = None
    destinations: dict[str, Destination] = {}
    rules: list[Rule] = []
    default: Target | None = None

    @field_validator("max_signal_age", mode="before")
    @classmethod
    def _age(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value, "max_signal_age")

    @model_validator(mode="after")
    def _references(self) -> "RulesFile":
        names = [rule.name for rule in self.rules]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"rule names must be unique; used more than once: {', '.join(twice)}")
        if not self.rules and self.default is None:
            raise ValueError("no rules and no default: add a `rules:` list (or a `default:` route)")
        return self


# ---------------------------------------------------------------- errors with line numbers


def _node_at(root: yaml.Node | None, loc: Sequence[Any], key_line: bool = False) -> yaml.Node | None:
    """The YAML node a validation error's location points at (the deepest one that exists);
    with ``key_line``, the last key itself rather than its value (an unknown key's own line)."""
    node = root
    for depth, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                return node
            node = pair[0] if key_line and depth == len(loc) - 1 else pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _path(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _allowed_keys(loc: Sequence[Any]) -> list[str]:
    parents = [str(p) for p in loc[:-1] if not isinstance(p, int)]
    owner = parents[-1] if parents else ""
    if owner == "when":
        return list(CONDITIONS)
    if owner == "destinations" or (len(parents) >= 2 and parents[-2] == "destinations"):
        return list(Destination.model_fields)
    if owner == "rules":
        return list(Rule.model_fields)
    if owner == "default":
        return list(Target.model_fields)
    return list(RulesFile.model_fields)


def _message(error: Mapping[str, Any]) -> str:
    loc, kind = error["loc"], error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key {loc[-1]!r}; {hint}allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{loc[-1]} is required here"
    message = str(error["msg"]).removeprefix("Value error, ")
    given = error.get("input")
    if kind.startswith(("literal_error", "greater_than", "less_than", "string_pattern", "string_too", "float", "int", "bool")):
        message += f" (got {given!r})"
    return message


def _describe(origin: str, root: yaml.Node | None, errors: Sequence[Mapping[str, Any]]) -> str:
    """One line per mistake, in file order: ``FILE:LINE: where.in.the.file: what is wrong and the fix``."""
    found = []
    for error in errors:
        loc = tuple(error["loc"])
        node = _node_at(root, loc, key_line=error["type"] == "extra_forbidden")
        line = node.start_mark.line + 1 if node is not None else 0
        found.append((line, f"{origin}:{line}: {_path(loc)}: {_message(error)}"))
    lines = [text for _, text in sorted(found, key=lambda item: item[0])[:MAX_ERRORS_SHOWN]]
    if len(found) > MAX_ERRORS_SHOWN:
        lines.append(f"... and {len(found) - MAX_ERRORS_SHOWN} more")
    return "\n".join(lines)


# ---------------------------------------------------------------- what a rule looks at


@dataclass(frozen=True)
class SignalFacts:
    """What the rules can see of one enriched signal, from the Avro record or `touchpoint enrich` JSONL."""

    signal_id: str
    brand: str
    channel: str
    source: str
    kind: str
    customer_id: str | None
    author: str | None
    touchpoints: tuple[str, ...]
    stage: str
    language: str
    score_metric: str | None
    score_value: float | None
    sentiment_label: str | None
    sentiment_score: float | None
    emotions: tuple[str, ...]
    text: str | None
    occurred_at: datetime | None
    routed_at: datetime | None  # when the pipeline knew it (enriched_at): the SLA clock starts here
    url: str | None = None
    score: Mapping[str, Any] | None = None

    @property
    def primary_touchpoint(self) -> str:
        """The survey's hint when given, else the top tag (the enricher puts it first)."""
        return self.touchpoints[0] if self.touchpoints else NO_TOUCHPOINT

    @property
    def subject(self) -> str:
        """Whom a case is about; the same choice as the Kafka key: customer, else author, else signal."""
        return self.customer_id or self.author or self.signal_id

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "SignalFacts":
        """Either shape: the enriched Avro record, or an object `touchpoint enrich` wrote."""
        score = record.get("score")
        if not isinstance(score, Mapping):
            score = next(({"metric": m, "value": float(record[m])} for m in ("nps", "csat", "ces") if record.get(m) is not None), None)
        sentiment = record.get("sentiment") if isinstance(record.get("sentiment"), Mapping) else {}
        source = str(record.get("source") or "file")
        signal_id = record.get("signal_id") or (
            make_signal_id(source, str(record["id"])) if record.get("id") is not None else ""
        )
        channel = str(record.get("channel") or "")
        return cls(
            signal_id=str(signal_id),
            brand=str(record.get("brand") or "default"),
            channel=channel,
            source=source,
            kind=str(record.get("kind") or kind_of(channel)),
            customer_id=record.get("customer_id"),
            author=record.get("author"),
            touchpoints=tuple(record.get("touchpoints") or ()),
            stage=str(record.get("journey_stage") or "unknown"),
            language=str(record.get("language") or "und"),
            score_metric=score.get("metric") if score else None,
            score_value=float(score["value"]) if score and score.get("value") is not None else None,
            sentiment_label=record.get("sentiment_label", sentiment.get("label")),
            sentiment_score=_float(record.get("sentiment_score", sentiment.get("score"))),
            emotions=tuple(record.get("emotions") or ()),
            text=record.get("text_redacted"),
            occurred_at=_time(record.get("occurred_at")),
            routed_at=_time(record.get("enriched_at")),
            url=record.get("url"),
            score=dict(score) if score else None,
        )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def nps_band(value: float) -> str:
    """Promoters 9-10, passives 7-8, detractors 0-6 (shared/DESIGN.md)."""
    return "promoter" if value >= 9 else ("passive" if value >= 7 else "detractor")


def _any_of(wanted: Sequence[str] | None, *values: str | None) -> bool:
    if wanted is None:
        return True
    folded = {w.casefold() for w in wanted}
    return any(v is not None and v.casefold() in folded for v in values)


@dataclass(frozen=True)
class Matcher:
    """One rule's conditions compiled once: the text patterns built, the tests in a table."""

    when: When
    keywords: re.Pattern[str] | None = field(init=False)
    pattern: re.Pattern[str] | None = field(init=False)

    def __post_init__(self) -> None:
        words = self.when.keywords
        keywords = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w.strip()) for w in words) + r")(?!\w)", re.I) if words else None
        object.__setattr__(self, "keywords", keywords)
        object.__setattr__(self, "pattern", re.compile(self.when.regex) if self.when.regex else None)

    def matches(self, facts: SignalFacts, has_open_case: bool = False) -> bool:
        return all(test(self, facts, has_open_case) for name, test in _TESTS.items() if getattr(self.when, name) is not None)


def _score(facts: SignalFacts, metric: str) -> float | None:
    return facts.score_value if facts.score_metric == metric else None


def _at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


Test = Callable[[Matcher, SignalFacts, bool], bool]
# condition -> its test; a condition left out of a rule is not tested
_TESTS: dict[str, Test] = {
    "brand": lambda m, f, o: _any_of(m.when.brand, f.brand),
    "channel": lambda m, f, o: _any_of(m.when.channel, f.channel),
    "source": lambda m, f, o: _any_of(m.when.source, f.source),
    "kind": lambda m, f, o: _any_of(m.when.kind, f.kind),
    "touchpoint": lambda m, f, o: _any_of(m.when.touchpoint, f.primary_touchpoint),
    "touchpoint_any": lambda m, f, o: _any_of(m.when.touchpoint_any, *f.touchpoints),
    "stage": lambda m, f, o: _any_of(m.when.stage, f.stage),
    "nps": lambda m, f, o: (v := _score(f, "nps")) is not None and nps_band(v) in m.when.nps,
    "csat_at_most": lambda m, f, o: _at_most(_score(f, "csat"), m.when.csat_at_most),
    "ces_at_most": lambda m, f, o: _at_most(_score(f, "ces"), m.when.ces_at_most),
    "sentiment": lambda m, f, o: _any_of(m.when.sentiment, f.sentiment_label),
    "sentiment_score_at_most": lambda m, f, o: _at_most(f.sentiment_score, m.when.sentiment_score_at_most),
    "sentiment_score_at_least": lambda m, f, o: f.sentiment_score is not None and f.sentiment_score >= m.when.sentiment_score_at_least,
    "emotions": lambda m, f, o: _any_of(m.when.emotions, *f.emotions),
    "language": lambda m, f, o: _any_of(m.when.language, f.language),
    "keywords": lambda m, f, o: bool(f.text and m.keywords.search(f.text)),
    "regex": lambda m, f, o: bool(f.text and m.pattern.search(f.text)),
    "open_case": lambda m, f, o: o == m.when.open_case,
}  # fmt: skip
assert set(_TESTS) == set(CONDITIONS) == set(When.model_fields), "every condition needs a test and a description"


# ---------------------------------------------------------------- routing


@dataclass(frozen=True)
class Route:
    """One routing decision: the rule (or "default"), its target, and the touchpoint the case is about."""

    rule: str
    team: str
    priority: str
    sla: timedelta
    destinations: tuple[str, ...]
    touchpoint: str


DEFAULT_RULE = "default"


@dataclass(frozen=True)
class RuleSet:
    """A validated rules file, ready to route; ``version`` is a hash of the file's bytes."""

    spec: RulesFile
    version: str
    origin: str
    matchers: tuple[Matcher, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matchers", tuple(Matcher(rule.when) for rule in self.spec.rules))

    @property
    def uses_open_case(self) -> bool:
        """Whether any rule asks if the customer has an open case (then the store must be asked)."""
        return any(rule.when.open_case is not None for rule in self.spec.rules)

    def matching(self, facts: SignalFacts, has_open_case: bool = False) -> list[Rule]:
        rules = [rule for rule, m in zip(self.spec.rules, self.matchers) if m.matches(facts, has_open_case)]
        return rules[:1] if self.spec.mode == "first_match" else rules

    def route(self, facts: SignalFacts, has_open_case: bool = False, now: datetime | None = None) -> list[Route]:
        """The routes for one signal: matching rules (first or all), else the default, else none."""
        if self.too_old(facts, now):
            return []
        rules = self.matching(facts, has_open_case)
        if rules:
            return [self._route(rule.name, rule, facts, rule.when) for rule in rules]
        if self.spec.default is not None:
            return [self._route(DEFAULT_RULE, self.spec.default, facts, None)]
        return []

    def too_old(self, facts: SignalFacts, now: datetime | None = None) -> bool:
        age = self.spec.max_signal_age
        if age is None or facts.occurred_at is None:
            return False
        return (now or datetime.now(timezone.utc)) - facts.occurred_at > age

    @staticmethod
    def _route(name: str, target: Target, facts: SignalFacts, when: When | None) -> Route:
        return Route(name, target.team, target.priority, target.sla, tuple(target.destinations), _case_touchpoint(facts, when))


def _case_touchpoint(facts: SignalFacts, when: When | None) -> str:
    """The touchpoint a case is about: the one the rule asked for when it asked, else the primary one."""
    if when is not None and when.touchpoint_any:
        wanted = {t.casefold() for t in when.touchpoint_any}
        for touchpoint in facts.touchpoints:
            if touchpoint.casefold() in wanted:
                return touchpoint
    return facts.primary_touchpoint


def parse_rules(text: str, origin: str = "rules", vocabulary: Vocabulary | None = None) -> RuleSet:
    """Validate a rules document; raises :class:`RulesError` listing every mistake with its line."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark else origin
        raise RulesError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise RulesError(
            f"{origin}: the rules file must be a mapping with `rules:` (and optionally mode, destinations, default); "
            f"it holds a YAML {type(data).__name__}"
        )
    try:
        spec = RulesFile.model_validate(data, context={"vocabulary": vocabulary})
    except ValidationError as exc:
        raise RulesError(_describe(origin, root, exc.errors())) from None
    problems = _unknown_destinations(spec)
    if problems:
        raise RulesError("\n".join(f"{origin}:{_node_line(root, loc)}: {_path(loc)}: {message}" for loc, message in problems))
    return RuleSet(spec, hashlib.sha256(text.encode()).hexdigest()[:12], origin)


def _node_line(root: yaml.Node | None, loc: Sequence[Any]) -> int | str:
    node = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else "?"


def _unknown_destinations(spec: RulesFile) -> list[tuple[tuple[Any, ...], str]]:
    known = sorted(spec.destinations)
    targets: list[tuple[tuple[Any, ...], Target]] = [(("rules", i), rule) for i, rule in enumerate(spec.rules)]
    if spec.default is not None:
        targets.append((("default",), spec.default))
    problems = []
    for loc, target in targets:
        for j, name in enumerate(target.destinations):
            if name not in spec.destinations:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                defined = f"defined: {', '.join(known)}" if known else "none is defined: add it under `destinations:`"
                problems.append(((*loc, "destinations", j), f"destination {name!r} is not defined; {hint}{defined}"))
    return problems


def load_rules(path: str | Path, vocabulary: Vocabulary | None = None) -> RuleSet:
    """Read and validate a rules file; raises :class:`RulesError` (missing file included)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError(f"{file}: no such rules file; fix TOUCHPOINT_ROUTING_RULES_PATH or the path given") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{file}: cannot read it ({exc})") from None
    return parse_rules(text, str(file), vocabulary)


class RulesSource:
    """The rules in force, re-read when the file changes (checked at most every ``check_every_s``).

    A broken edit is logged with its line numbers and counted
    (``touchpoint_routing_rules_reloads_total{result="error"}``); the last good
    rules stay in force until the file is fixed. The first load must succeed.
    """

    def __init__(
        self,
        path: str | Path,
        vocabulary: Vocabulary | None = None,
        check_every_s: float = 5.0,
        check: Callable[[RuleSet], Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.vocabulary = vocabulary
        self.check_every_s = check_every_s
        self.check = check  # more that must hold (e.g. every destination has a URL); raises RulesError
        self.rules = self._load()
        self.last_error: str | None = None
        self._stamp = self._file_stamp()
        self._checked = time.monotonic()
        metrics.ROUTING_RULES_RELOADS.labels("ok").inc()

    def _load(self) -> RuleSet:
        rules = load_rules(self.path, self.vocabulary)
        if self.check is not None:
            self.check(rules)
        return rules

    def _file_stamp(self) -> tuple[float, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size)

    def current(self) -> RuleSet:
        """The rules to use now (cheap: one stat() per ``check_every_s``)."""
        if time.monotonic() - self._checked >= self.check_every_s:
            self.refresh()
        return self.rules

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when new rules are in force."""
        self._checked = time.monotonic()
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            rules = self._load()
        except RulesError as exc:
            self.last_error = str(exc)
            metrics.ROUTING_RULES_RELOADS.labels("error").inc()
            log.error("routing rules not reloaded, the previous ones stay in force:\n%s", exc)
            return False
        self.last_error = None
        if rules.version == self.rules.version:
            return False
        self.rules = rules
        metrics.ROUTING_RULES_RELOADS.labels("ok").inc()
        log.warning("routing rules reloaded from %s (version %s)", self.path, rules.version)
        return True
