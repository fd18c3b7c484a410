"""PII redaction: real-looking secrets and personal addresses replaced, examples and private addresses kept."""

from __future__ import annotations

import json

from dataengine.filters.pii import redact, redact_batch
from dataengine.schema import doc_row, rows_to_table

KEY_BLOCK = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aozN3tihPmljnnudb9G3HECdnH\n"
    "-----END RSA PRIVATE KEY-----"
)


def test_emails_ips_and_keys_are_replaced() -> None:
    text = (
        "Contact jane.doe@gmail.com or ops@corp-mail.co.uk; server 8.8.4.4 and 2001:4860:4860:0:0:0:0:8888.\n"
        f'AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\ntoken = "ghp_{"a1B2" * 9}"\n'
        f'password = "hunter2hunter2"\n{KEY_BLOCK}\n'
    )
    out, counts = redact(text)
    assert counts == {"email": 2, "ip": 2, "key": 4}
    for secret in ("jane.doe@gmail.com", "8.8.4.4", "AKIAIOSFODNN7EXAMPLE", "ghp_", "hunter2", "MIIEow", "4860"):
        assert secret not in out
    assert 'password = "<SECRET>"' in out and "<EMAIL>" in out and "<IP_ADDRESS>" in out


def test_non_personal_look_alikes_are_kept() -> None:
    text = "See user@example.com, localhost 127.0.0.1, LAN 192.168.1.20, docs 192.0.2.7, version 1.2.3.4.5, pi 3.14."
    out, counts = redact(text)
    assert out == text and not counts


def test_batch_redacts_kept_rows_and_records_counts_in_meta() -> None:
    rows = [
        doc_row(source="web_en", kind="text", url="1", text="mail me: someone@gmail.com"),
        doc_row(source="web_en", kind="text", url="2", text="no pii here"),
        doc_row(source="web_en", kind="text", url="3", text="x@gmail.com", reject="min_length:too_short"),
    ]
    out = redact_batch(rows_to_table(rows)).to_pylist()
    assert out[0]["text"] == "mail me: <EMAIL>" and json.loads(out[0]["meta"])["pii"] == {"email": 1}
    assert "pii" not in json.loads(out[1]["meta"])
    assert out[2]["text"] == "x@gmail.com"  # rejected documents are not shipped, so not rewritten
