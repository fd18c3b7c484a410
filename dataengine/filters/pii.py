"""PII and secret redaction: e-mail addresses, IP addresses and credentials replaced by placeholders.

Patterns follow BigCode's PII pipeline for The Stack (e-mails, IPv4/IPv6, keys) and the well-known token formats
of detect-secrets/gitleaks (AWS, GitHub, Slack, Google, OpenAI-style keys, private key blocks, ``password = "..."``
assignments).  Redaction keeps the document: it is a transformation, counted by kind per source in the report,
never a rejection.  Addresses that are not personal (loopback, private ranges, documentation examples such as
``example.com`` and 192.0.2.0/24, version-number look-alikes) are left alone, as BigCode does.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable

import pyarrow as pa

from dataengine.extract.spans import Edit, Span, code_share, remap, spans_array, spans_of
from dataengine.schema import set_column

PLACEHOLDERS = {
    "email": "<EMAIL>",
    "ip": "<IP_ADDRESS>",
    "key": "<SECRET>",
}

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])")
IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])")
SECRETS = [
    re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----[\s\S]+?-----END ([A-Z]+ )?PRIVATE KEY-----"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),  # Slack
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API key
    re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}\b"),  # OpenAI-style secret keys
    re.compile(r"""(?i)(?<=[\s"'{,(])(?:password|passwd|secret|api_?key|access_?token|auth_?token)\s*[:=]\s*["']([^"'\s]{8,})["']"""),
]  # fmt: skip
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net", "localhost", ".test", ".invalid", ".example")


def _public_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    documentation = any(ip in ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
    return ip.is_global and not documentation


def redact(text: str) -> tuple[str, Counter[str]]:
    """The text with PII and secrets replaced, and how many of each kind were replaced."""
    text, counts, _ = redact_spans(text, [])
    return text, counts


def redact_spans(text: str, spans: list[Span]) -> tuple[str, Counter[str], list[Span]]:
    """``redact`` that also moves the text's code spans through the replacements (placeholders change lengths)."""
    counts: Counter[str] = Counter()
    edits: list[Edit] = []

    def replace(kind: str, keep: Callable[[re.Match[str]], bool] = lambda m: False) -> Callable[[re.Match[str]], str]:
        def sub(match: re.Match[str]) -> str:
            if keep(match):
                return match.group(0)
            counts[kind] += 1
            if kind == "key" and match.re.groups == 1:  # an assignment: keep the name, replace the value
                start, end = match.span(1)
                edits.append((start, end, len(PLACEHOLDERS[kind])))
                whole = match.group(0)
                return whole[: start - match.start()] + PLACEHOLDERS[kind] + whole[end - match.start() :]
            edits.append((match.start(), match.end(), len(PLACEHOLDERS[kind])))
            return PLACEHOLDERS[kind]

        return sub

    passes = [(pattern, replace("key")) for pattern in SECRETS] + [
        (EMAIL, replace("email", lambda m: m.group(0).lower().endswith(EXAMPLE_DOMAINS))),
        (IPV4, replace("ip", lambda m: not _public_ip(m.group(0)))),
        (IPV6, replace("ip", lambda m: not _public_ip(m.group(0)))),
    ]
    for pattern, sub in passes:
        text = pattern.sub(sub, text)
        if edits:  # each pass's edits are in the offsets of the text it was given
            spans = remap(spans, edits)
            edits.clear()
    return text, counts, spans


def redact_batch(table: pa.Table) -> pa.Table:
    """Ray Data ``map_batches`` function: redact kept documents' text (code spans moved along); counts go to
    ``meta["pii"]``."""
    texts, metas = table["text"].to_pylist(), table["meta"].to_pylist()
    spans = spans_of(table["code_spans"])
    for i, (text, prev) in enumerate(zip(texts, table["reject"].to_pylist(), strict=True)):
        if text is None or prev is not None:
            continue
        texts[i], counts, spans[i] = redact_spans(text, spans[i])
        if counts:
            metas[i] = json.dumps(
                {**json.loads(metas[i]), "pii": dict(sorted(counts.items()))}, ensure_ascii=False, sort_keys=True
            )
    table = set_column(table, "text", pa.array(texts, pa.string()))
    table = set_column(table, "code_spans", spans_array(spans))
    shares = [code_share(t, s) for t, s in zip(texts, spans, strict=True)]
    table = set_column(table, "code_share", pa.array(shares, pa.float32()))
    return set_column(table, "meta", pa.array(metas, pa.string()))
