"""The crawler: seed URLs -> polite, resumable, distributed fetching -> gzipped WARC files.

One module per job: ``urls`` (normalisation, scope), ``guard`` (private-address refusal), ``robots``,
``charset``, ``fetcher`` (HTTP), ``links`` (outlinks, canonical), ``warcfile`` (records, files, resume),
``frontier`` (per-host queues, limits, seen-set), ``worker`` (the Ray actor that owns hosts) and
``crawler`` (the driver loop).  ``crawler.crawl`` is the entry point.
"""
