"""What the rules look for: log line shapes, PromQL metric families and connection targets.

The log patterns are the messages real software prints (Go net, glibc, JVM, Node.js, nginx, envoy,
kubelet, PostgreSQL, Redis, OpenSSL); each one was chosen because it names a cause, not a symptom.
"""

from __future__ import annotations

import re


def _any(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE)


LOG_PATTERNS: dict[str, re.Pattern[str]] = {
    "oom": _any(
        r"OutOfMemoryError",
        r"out of memory",
        r"JavaScript heap out of memory",
        r"\bMemoryError\b",
        r"Cannot allocate memory",
        r"oom[-_ ]kill",
        r"memory cgroup out of memory",
    ),
    "leak": _any(
        r"GC overhead limit exceeded", r"heap (?:usage|size) (?:keeps )?grow", r"possible memory leak"
    ),
    "config": _any(
        r"(?:missing|required|not set|unset|undefined|empty)\b.{0,60}\b(?:env(?:ironment)? var|variable|"
        r"config(?:uration)?|setting|propert(?:y|ies))",
        r"(?:environment variable|env var)\b.{0,60}\b(?:is )?(?:not set|missing|required|empty|undefined)",
        r"KeyError: '[A-Z][A-Z0-9_]+'",
        r"Could not resolve placeholder",
        r"Failed to bind properties",
        r"APPLICATION FAILED TO START",
        r"(?:open|read|load|stat)\b.{0,80}\.(?:ya?ml|json|toml|conf|ini|properties|env)\b.{0,20}"
        r"no such file or directory",
        r"(?:config(?:uration)?|settings) file.{0,60}(?:not found|no such file|does not exist|missing)",
        r"FileNotFoundError:.{0,80}(?:config|settings|\.ya?ml|\.json|\.toml|\.ini)",
        r"(?:yaml|json|toml): (?:line \d+|cannot unmarshal|unmarshal errors|invalid character)",
        r"mapping values are not allowed",
        r"(?:could not|cannot|can't|failed to|unable to) (?:load|read|parse) (?:the )?(?:config|configuration|settings)",
        r"invalid (?:configuration|config|value for (?:flag|option|setting))",
        r"unknown (?:flag|shorthand flag|configuration key|directive)",
        r"\[emerg\].{0,80}(?:unknown directive|invalid|in /etc/)",
        r"validation errors? for Settings",
    ),
    "exec": _any(
        r"exec format error",
        r"executable file not found",
        r"exec: .{0,80}no such file",
        r"Cannot find module",
        r"ModuleNotFoundError",
        r"ImportError: cannot import",
        r"ClassNotFoundException",
        r"NoSuchMethodError",
        r"undefined symbol",
        r"error while loading shared libraries",
    ),
    "refused": _any(
        r"connection refused", r"ECONNREFUSED", r"Connection to \S+ refused", r"Error 111 connecting"
    ),
    "upstream": _any(
        r"no live upstreams",
        r"upstream connect error",
        r"no healthy upstream",
        r"upstream prematurely closed",
        r"upstream timed out",
        r"Bad Gateway",
        r"received (?:HTTP )?5\d\d from",
        r"upstream (?:service|server) (?:unavailable|returned 5)",
    ),
    "db_degraded": _any(
        r"too many (?:connections|clients)",
        r"remaining connection slots are reserved",
        r"the database system is (?:starting up|shutting down|in recovery mode)",
        r"LOADING Redis is loading",
        r"MASTERDOWN",
    ),
    "breaker": _any(r"circuit[- ]?breaker.{0,40}\bopen", r"CircuitBreaker '.+' is OPEN"),
    "dns": _any(
        r"no such host",
        r"Temporary failure in name resolution",
        r"Name or service not known",
        r"getaddrinfo (?:ENOTFOUND|EAI_AGAIN)",
        r"UnknownHostException",
        r"server misbehaving",
        r"could not resolve host",
        r"NXDOMAIN",
        r"lookup \S+ on \S+:53",
    ),
    "timeout": _any(
        r"i/o timeout",
        r"context deadline exceeded",
        r"(?:connection|read|connect|request) timed out",
        r"SocketTimeoutException",
        r"ETIMEDOUT",
        r"Client\.Timeout exceeded",
        r"TLS handshake timeout",
    ),
    "reset": _any(r"connection reset by peer", r"ECONNRESET", r"broken pipe", r"unexpected EOF"),
    "unreachable": _any(r"no route to host", r"network is unreachable", r"EHOSTUNREACH", r"ENETUNREACH"),
    "cert_expired": _any(
        r"certificate has expired",
        r"CERT_HAS_EXPIRED",
        r"certificate expired",
        r"CertificateExpiredException",
        r"validity check failed",
        r"certificate is not valid after",
    ),
    "cert_invalid": _any(
        r"x509:",
        r"certificate verify failed",
        r"CERTIFICATE_VERIFY_FAILED",
        r"bad certificate",
        r"SSLHandshakeException",
        r"unable to get local issuer certificate",
    ),
    "disk": _any(
        r"No space left on device",
        r"ENOSPC",
        r"Disk quota exceeded",
        r"disk (?:is )?full",
        r"flood[- ]stage disk watermark",
        r"could not (?:extend|write to) file",
    ),
    "kubelet_node": _any(
        r"Kubelet stopped posting node status",
        r"PLEG is not healthy",
        r"container runtime is down",
        r"node .{0,40}(?:is )?not ?ready",
        r"Node became not ready",
    ),
    "rate_limited": _any(r"limiting requests, excess", r"rate limit(?:ed| exceeded)", r"Too Many Requests"),
}

# Metric families, tried in this order: the first family whose pattern matches the query wins.
METRIC_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("oom_kills", _any(r"oom_events", r"oom_kill", r"last_terminated_reason\{[^}]*OOMKilled")),
    ("cert", _any(r"ssl_earliest_cert_expiry", r"cert\w*_expiration_timestamp", r"cert_not_after")),
    ("node_ready", _any(r"kube_node_status_condition\{[^}]*Ready")),
    (
        "disk",
        _any(r"filesystem_(?:avail|free|size|used)", r"volume_stats_(?:available|used|capacity)", r"disk_"),
    ),
    ("throttle", _any(r"cfs_throttled")),
    ("errors", _any(r"(?:code|status|status_code|response_code)\s*=~?\s*\"5")),
    # A histogram's _count is the number of requests it observed (Micrometer: http_server_requests_seconds).
    (
        "requests",
        _any(
            r"requests_total",
            r"_requests\b",
            r"requests_count",
            r"handled_total",
            r"request_count",
            r"_seconds_count\b",
        ),
    ),
    ("latency", _any(r"duration_seconds", r"latency", r"response_time", r"_seconds_bucket", r"quantile")),
    ("cpu", _any(r"cpu_seconds", r"cpu_usage", r"cpu_utili[sz]ation", r"node_load\d")),
    (
        "memory",
        _any(
            r"memory_working_set",
            r"memory_usage",
            r"memory_rss",
            r"resident_memory",
            r"heap_inuse",
            r"MemAvailable",
            r"jvm_memory_used",
        ),
    ),
    ("up", _any(r"(?:^|[^\w])up\{", r"probe_success", r"\b(?:pg|redis|mysql|mongodb|rabbitmq)_up\b")),
    ("dns", _any(r"coredns_\w+.*(?:SERVFAIL|REFUSED)", r"coredns_forward_\w*errors", r"probe_dns")),
    ("network_errors", _any(r"network_(?:receive|transmit)_(?:errs|drop)", r"RetransSegs", r"tcp_retrans")),
)


def metric_family(query: str) -> str | None:
    return next((name for name, pattern in METRIC_FAMILIES if pattern.search(query)), None)


_TARGETS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"lookup ([\w.-]+)",
        r"dial tcp \[?([\w.:-]+?)\]?:\d+",
        r"upstream: \"\w+://([^/\":]+)",
        r"Connection to ([\w.-]+):\d+ refused",
        r"Error \d+ connecting to ([\w.-]+):\d+",
        r"Failed to connect to ([\w.-]+)",
        r"ECONN\w+ ([\w.-]+):\d+",
        r"connect(?:ing)? to (?:host |server )?[\"']?([a-z][\w.-]+)",
        r"\b([a-z][\w-]*(?:\.[\w-]+)+):\d{2,5}\b",
        r"\b(\d{1,3}(?:\.\d{1,3}){3}):\d{2,5}\b",
    )
]
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def target_of(line: str) -> str:
    """The host a connection error names, or empty when the line names none."""
    for pattern in _TARGETS:
        if found := pattern.search(line):
            return found.group(1).lower()
    return ""
