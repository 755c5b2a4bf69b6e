"""Logs as Drain3 templates: thousands of lines become a bounded list of patterns with counts.

Large logs overflowed the LLM context in other tools (HolmesGPT#73); nothing downstream of this
module sees raw logs, only a `LogSummary` whose size is capped whatever the input size.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Literal

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig
from pydantic import BaseModel

from workflows.evidence import LogSummary, LogTemplate

LogFormat = Literal["auto", "text", "jsonl", "csv"]
Level = Literal["error", "warning", "info", ""]
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "text", "jsonl", "csv")

MAX_TEMPLATES = 40
MAX_CHARS = 240
MAX_EXAMPLES = 3
# Bounds on what one analysis reads (REMEDIATOR_LOGS_MAX_LINE_CHARS, REMEDIATOR_LOGS_MAX_LINES): a line
# is clipped before any pattern sees it, and lines past the cap are not read at all.
MAX_LINE_CHARS = 4096
MAX_LINES = 100_000
MESSAGE_FIELDS = ("msg", "message", "log", "line", "text")
TIME_FIELDS = ("time", "ts", "timestamp", "@timestamp", "t", "date")
LEVEL_FIELDS = ("level", "severity", "lvl", "levelname")

# Order matters: timestamps and UUIDs contain numbers, so they are masked before numbers are.
_MASKS = [
    (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "TS"),
    (r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}", "TS"),
    (r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}", "TS"),
    (r"(?<=\b[IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+", "TS"),  # klog: I0501 12:00:00.123456
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b", "IP"),
    (r"\b0x[0-9a-fA-F]+\b", "HEX"),
    (r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", "HEX"),
    # Whole numbers with an optional unit only (keeps http2, sha256, pod-name hashes), and never the
    # HTTP status right after an access log's request line, which tells a 502 from a 200.
    (r"(?<![\w<.-])(?<!\d\" )\d+(?:\.\d+)*(?:ms|us|µs|ns|s|m|h|[kKMG]i?B)?(?![\w.])", "NUM"),
]

# host:port or ip:port: the peers a line talks to, which the masks and wildcards hide in templates.
_PEER = re.compile(r"\b(?:\d{1,3}(?:\.\d{1,3}){3}|[a-z][\w-]*(?:\.[\w-]+)+):\d{2,5}\b")
_LEADING_TIME = re.compile(
    r"^\[?(?:\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?|\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})\]?\s*"
)
_TIME_WINDOW = 80  # a line's own timestamp sits near its start; later ones are quoted data
_TIMESTAMPS = [
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), None),
    (re.compile(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}"), "%Y/%m/%d %H:%M:%S"),
    (re.compile(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}"), "%d/%b/%Y:%H:%M:%S %z"),
]

_ERROR = re.compile(
    r"\b(?:ERROR|ERR|FATAL|CRITICAL|CRIT|PANIC|SEVERE|EMERG)\b|\[(?:error|crit|alert|emerg)\]|^[EF]\d{4} "
    r"|^panic:|^fatal error:|Traceback \(most recent call last\)|^\S*(?:Exception|Error)\b"
    r"|^Caused by:|\" 5\d\d \d",
    re.IGNORECASE,
)
_WARNING = re.compile(r"\b(?:WARN|WARNING)\b|\[warn\]|^W\d{4} |\" 4\d\d \d", re.IGNORECASE)
_INFO = re.compile(
    r"\b(?:INFO|DEBUG|TRACE|NOTICE)\b|\[(?:notice|info)\]|^I\d{4} |\" [23]\d\d \d", re.IGNORECASE
)
_LEVEL_WORDS: dict[str, Level] = {
    "error": "error",
    "err": "error",
    "fatal": "error",
    "critical": "error",
    "panic": "error",
    "warn": "warning",
    "warning": "warning",
    "info": "info",
    "debug": "info",
    "trace": "info",
}


class LogFormatError(ValueError):
    """Input that cannot be read as the given format; `line` is 1-based, `source` names the input."""

    def __init__(self, line: int, message: str, source: str = "") -> None:
        super().__init__(f"{source + ': ' if source else ''}line {line}: {message}")
        self.line = line
        self.reason = message
        self.source = source


@dataclass(frozen=True)
class LogLine:
    number: int
    message: str
    at: datetime | None = None
    level: Level = ""
    clipped: bool = False  # longer than the line cap, and cut to it


def _line(number: int, whole: str, limit: int, at: datetime | None = None, declared: str = "") -> LogLine:
    message = clip(whole, limit)
    return LogLine(number, message, at, level_of(message, declared), clipped=message is not whole)


def estimate_tokens(text: str) -> int:
    """The common len/4 estimate of BPE tokens; no tokenizer files are needed, so it works offline."""
    return len(text) // 4


def decode(data: bytes) -> str:
    """UTF-8 text, or an error naming the line of the first undecodable byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LogFormatError(data.count(b"\n", 0, err.start) + 1, "not UTF-8 text") from err


def parse_time(text: str) -> datetime | None:
    """The first timestamp found in a line, in UTC; None when the line carries none we know."""
    head = text[:_TIME_WINDOW]
    for pattern, fmt in _TIMESTAMPS:
        if found := pattern.search(head):
            raw = found.group(0)
            try:
                # Naive until the return below makes it UTC.
                at = datetime.strptime(raw, fmt) if fmt else datetime.fromisoformat(raw.replace(",", "."))  # noqa: DTZ007
            except ValueError:
                continue
            return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return None


def _time_value(value: object) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value  # milliseconds since the epoch
        return datetime.fromtimestamp(seconds, UTC)
    return parse_time(value) if isinstance(value, str) else None


def level_of(message: str, declared: str = "") -> Level:
    if declared and (known := _LEVEL_WORDS.get(declared.strip().lower())):
        return known
    if _ERROR.search(message):
        return "error"
    if _WARNING.search(message):
        return "warning"
    return "info" if _INFO.search(message) else ""


def detect_format(text: str) -> LogFormat:
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.lstrip().startswith("{"):
        return "jsonl"
    header = next(csv.reader([first]), [])
    if len(header) > 1 and any(h.strip().lower() in MESSAGE_FIELDS for h in header):
        return "csv"
    return "text"


def clip(line: str, limit: int = MAX_LINE_CHARS) -> str:
    """The line's first `limit` characters and a marker saying how much was cut."""
    return line if len(line) <= limit else f"{line[:limit]}… [truncated {len(line) - limit} chars]"


def _text_lines(text: str, limit: int) -> Iterator[LogLine]:
    for number, whole in enumerate(text.splitlines(), start=1):
        if "\x00" in whole:
            raise LogFormatError(number, "binary data (NUL byte) in a text log")
        if whole.strip():
            yield _line(number, whole, limit, parse_time(whole))


def _first_field(record: dict[str, object], names: Iterable[str]) -> object:
    lowered = {k.lower(): v for k, v in record.items()}
    return next((lowered[n] for n in names if lowered.get(n) not in (None, "")), None)


def _json_lines(text: str, limit: int) -> Iterator[LogLine]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise LogFormatError(number, f"invalid JSON: {err.msg} at column {err.colno}") from err
        if not isinstance(record, dict):
            raise LogFormatError(number, f"expected a JSON object, got {type(record).__name__}")
        message = _first_field(record, MESSAGE_FIELDS)
        if message is None:
            fields = ", ".join(sorted(record)[:8])
            raise LogFormatError(number, f"no message field ({'/'.join(MESSAGE_FIELDS)}); fields: {fields}")
        declared = _first_field(record, LEVEL_FIELDS)
        at = _time_value(_first_field(record, TIME_FIELDS))
        yield _line(number, str(message).rstrip("\n"), limit, at, str(declared or ""))


def _csv_rows(reader: Iterator[list[str]], line_num: Callable[[], int]) -> Iterator[tuple[int, list[str]]]:
    try:
        for row in reader:
            yield line_num(), row
    except csv.Error as err:
        raise LogFormatError(line_num(), f"malformed CSV: {err}") from err


def _csv_lines(text: str, limit: int) -> Iterator[LogLine]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    column = next((header.index(n) for n in MESSAGE_FIELDS if n in header), None)
    if column is None:
        raise LogFormatError(1, f"CSV header has no message column ({'/'.join(MESSAGE_FIELDS)}): {header}")
    time_column = next((header.index(n) for n in TIME_FIELDS if n in header), None)
    level_column = next((header.index(n) for n in LEVEL_FIELDS if n in header), None)
    for number, row in _csv_rows(reader, lambda: reader.line_num):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise LogFormatError(number, f"{len(row)} columns where the header has {len(header)}")
        at = parse_time(row[time_column]) if time_column is not None else None
        declared = row[level_column] if level_column is not None else ""
        yield _line(number, row[column], limit, at, declared)


@dataclass(frozen=True)
class LineLimits:
    line_chars: int = MAX_LINE_CHARS
    lines: int = MAX_LINES


def parse_lines(text: str, fmt: LogFormat = "auto", limits: LineLimits = LineLimits()) -> list[LogLine]:
    """At most `limits.lines` lines, each clipped to `limits.line_chars`."""
    chosen = detect_format(text) if fmt == "auto" else fmt
    readers = {"text": _text_lines, "jsonl": _json_lines, "csv": _csv_lines}
    return list(islice(readers[chosen](text, limits.line_chars), limits.lines))


def _miner() -> TemplateMiner:
    config = TemplateMinerConfig()  # built in memory: Drain3 must not look for a drain3.ini on disk
    config.masking_instructions = [MaskingInstruction(pattern, name) for pattern, name in _MASKS]
    config.drain_sim_th = 0.5
    config.drain_depth = 4
    config.drain_max_clusters = 5000  # bounds memory on pathological input (LRU eviction)
    config.profiling_enabled = False
    return TemplateMiner(config=config)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Cluster:
    level: Level
    first_line: int
    last_line: int = 0
    count: int = 0
    baseline: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    examples: list[str] = field(default_factory=list)
    peers: set[str] = field(default_factory=set)

    def sample(self, message: str, limit: int) -> None:
        """Keep the first line, then lines that name a peer no kept line names (masking hides them)."""
        if len(self.examples) >= MAX_EXAMPLES:
            return
        peers = set(_PEER.findall(message))
        if not self.examples or not peers <= self.peers:
            self.examples.append(_cap(message.strip(), limit))
            self.peers |= peers


@dataclass
class Summariser:
    """Mines a baseline (optional) and then the logs under study with one Drain3 tree per level.

    Levels get separate trees so an error line is never absorbed into a look-alike info template
    (a 502 access line next to thousands of 200s stays visible).
    """

    max_templates: int = MAX_TEMPLATES
    max_chars: int = MAX_CHARS
    _miners: dict[Level, TemplateMiner] = field(default_factory=dict)
    _clusters: dict[tuple[Level, int], _Cluster] = field(default_factory=dict)
    _total: int = 0
    _baseline_total: int = 0

    def _add(self, line: LogLine) -> _Cluster:
        if line.level not in self._miners:
            self._miners[line.level] = _miner()
        miner = self._miners[line.level]
        # A leading timestamp is already in `line.at`; left in, it makes unrelated lines look alike.
        cluster_id = int(miner.add_log_message(_LEADING_TIME.sub("", line.message, count=1))["cluster_id"])
        return self._clusters.setdefault((line.level, cluster_id), _Cluster(line.level, line.number))

    def baseline(self, lines: Iterable[LogLine]) -> None:
        for line in lines:
            self._add(line).baseline += 1
            self._baseline_total += 1

    def add(self, lines: Iterable[LogLine]) -> None:
        for line in lines:
            cluster = self._add(line)
            if cluster.count == 0:
                cluster.first_line = line.number
            cluster.sample(line.message, self.max_chars)
            cluster.count += 1
            cluster.last_line = line.number
            if line.at is not None:
                cluster.first_seen = min(cluster.first_seen or line.at, line.at)
                cluster.last_seen = max(cluster.last_seen or line.at, line.at)
            self._total += 1

    def _templates(self) -> list[LogTemplate]:
        found: list[LogTemplate] = []
        for (level, cluster_id), cluster in self._clusters.items():
            if cluster.count == 0:
                continue
            mined = self._miners[level].drain.id_to_cluster.get(cluster_id)
            template = mined.get_template() if mined else cluster.examples[0]
            found.append(
                LogTemplate(
                    template=_cap(template, self.max_chars),
                    count=cluster.count,
                    examples=cluster.examples,
                    level=level,
                    first_line=cluster.first_line,
                    last_line=cluster.last_line,
                    first_seen=cluster.first_seen,
                    last_seen=cluster.last_seen,
                    new=self._baseline_total > 0 and cluster.baseline == 0,
                )
            )
        return found

    def summary(self) -> LogSummary:
        rank = {"error": 0, "warning": 1}
        # What is new or failing survives the cap first; the bulk of routine lines is what gets cut.
        ordered = sorted(self._templates(), key=lambda t: (not t.new, rank.get(t.level, 2), -t.count))
        kept, dropped = ordered[: self.max_templates], ordered[self.max_templates :]
        return LogSummary(
            total_lines=self._total,
            templates=kept,
            omitted_templates=len(dropped),
            omitted_lines=sum(t.count for t in dropped),
            baseline_lines=self._baseline_total,
        )


def summarize_lines(
    lines: Iterable[LogLine],
    baseline: Iterable[LogLine] = (),
    max_templates: int = MAX_TEMPLATES,
    max_chars: int = MAX_CHARS,
) -> LogSummary:
    """Parsed lines (and optionally a healthy baseline) to a bounded LogSummary."""
    summariser = Summariser(max_templates=max_templates, max_chars=max_chars)
    summariser.baseline(baseline)
    summariser.add(lines)
    return summariser.summary()


def summarize(text: str, fmt: LogFormat = "auto", baseline: str = "") -> LogSummary:
    """Raw logs to a LogSummary; the baseline, if any, is in the same format."""
    return summarize_lines(parse_lines(text, fmt), parse_lines(baseline, fmt) if baseline else ())


class LogAnalysis(BaseModel):
    """What `POST /logs/analyze` and `remediator logs analyze` return."""

    source: str
    summary: LogSummary
    anomalies: list[LogTemplate]
    raw_tokens: int  # estimated with estimate_tokens (len/4)
    summary_tokens: int
    # What the caps left out: lines clipped to the line cap, and whether lines past the line cap
    # went unread.
    clipped_lines: int = 0
    line_cap_reached: bool = False

    @property
    def reduction(self) -> float:
        return self.raw_tokens / self.summary_tokens if self.summary_tokens else 0.0


def _parse(source: str, text: str, fmt: LogFormat, limits: LineLimits) -> list[LogLine]:
    try:
        return parse_lines(text, fmt, limits)
    except LogFormatError as err:
        raise LogFormatError(err.line, err.reason, source) from err


def analyze(
    source: str,
    text: str,
    fmt: LogFormat = "auto",
    baseline: str = "",
    baseline_source: str = "baseline",
    max_templates: int = MAX_TEMPLATES,
    limits: LineLimits = LineLimits(),
) -> LogAnalysis:
    """Summarise and measure; a LogFormatError names the input (`source` or the baseline) and line."""
    base = _parse(baseline_source, baseline, fmt, limits) if baseline else []
    lines = _parse(source, text, fmt, limits)
    summary = summarize_lines(lines, base, max_templates=max_templates)
    return LogAnalysis(
        source=source,
        summary=summary,
        anomalies=summary.anomalies(),
        raw_tokens=estimate_tokens(text),
        summary_tokens=estimate_tokens(summary.render()),
        clipped_lines=sum(line.clipped for line in lines),
        line_cap_reached=len(lines) >= limits.lines,
    )
