"""``license``: keep code only under the licences a mix allows (permissive by default), as The Stack does.

It judges the SPDX ``license`` the readers put in meta (see ``dataengine.licenses``), normalised again here so
that a source whose reader does not normalise (a JSONL dump with Debian names, say) is judged the same way.
A document whose licence nobody asserted (``NOASSERTION``, or none) is ``unknown``: rejected by default, since
code without a licence may not be redistributed, or kept with ``unknown: keep``.  Not in the default chain;
a mix enables it::

    pipeline:
      filters:
        - {name: license, domains: [code], params: {allow: permissive}}   # or allow: [MIT, Apache-2.0, ...]
"""

from __future__ import annotations

from typing import Any, Literal

from dataengine.licenses import NOASSERTION, PERMISSIVE, allowed, normalise


class LicenseFilter:
    """``not_permitted`` when the licence expression is not satisfied by ``allow``, ``unknown`` when there is none.

    ``allow`` is ``"permissive"`` (``licenses.PERMISSIVE``) or a list of licence names, normalised like the
    documents' (``Expat`` lists ``MIT``); ``permissive`` inside the list stands for the whole set.
    """

    needs_meta = True

    def __init__(
        self, allow: Literal["permissive"] | list[str] = "permissive", unknown: Literal["reject", "keep"] = "reject"
    ) -> None:
        if isinstance(allow, str) and allow != "permissive":
            raise ValueError(f"license: allow must be 'permissive' or a list of licences, got {allow!r}")
        if unknown not in ("reject", "keep"):
            raise ValueError(f"license: unknown must be 'reject' or 'keep', got {unknown!r}")
        names = [allow] if isinstance(allow, str) else allow
        self.allow = frozenset().union(
            *(PERMISSIVE if name == "permissive" else {normalise(str(name))} for name in names)
        )
        self.keep_unknown = unknown == "keep"

    def __call__(self, text: str, meta: dict[str, Any]) -> str | None:
        licence = meta.get("license")
        if not licence or licence == NOASSERTION:
            return None if self.keep_unknown else "unknown"
        return None if allowed(normalise(str(licence)), self.allow) else "not_permitted"
