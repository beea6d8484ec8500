"""Report certificates already processed when a new name is watched, without asking any log.

The names index (state table ``name_blocks``: each batch's names, positions and TBS hashes,
compressed) is kept for ``[monitor] names_retention_days``. A watch item seen for the first time
is looked up there; each certificate found becomes a ``discovered_cert`` event marked
``backfill: true`` (one per TBS hash, as for live alerts). Precertificates bring their issuer's
key hash from the leaf, so authorised issuers are recognised; the index keeps no issuer name,
serial, validity or key, so those fields are null and the log position says where the rest is.
"""

from __future__ import annotations

import time

from .match.rules import Rules
from .match.watchlist import Watchlist
from .state import StateDB


def backfill(state: StateDB, rules: Rules) -> int:
    """Queue events for watch items not backfilled before; returns how many were queued.

    One pass over the names index serves every new item; the index is read only when a watch
    item is new, so its compressed blocks cost nothing on the hot path.
    """
    seen = {r[0] for r in state.db.execute("SELECT item FROM watch_items")}
    new = [i for i in rules.watch_items if i not in seen]
    if not new:
        return 0
    matcher = Watchlist(new)
    urls = dict(state.db.execute("SELECT log_id, url FROM logs").fetchall())
    found = [(row, item) for row in state.name_rows() if (item := matcher.match(row[4])) is not None]
    queued = 0
    with state.transaction() as db:
        for (log_id, idx, etype, tbs_hex, names, issuer), item in found:
            pol = rules.policy.evaluate(names, issuer, "", tbs_hex)
            event = {
                "event": "discovered_cert",
                "id": f"discovered_cert:{tbs_hex}",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "backfill": True,
                "log_url": urls.get(log_id),
                "log_id": log_id,
                "index": idx,
                "entry_type": "precert" if etype == 1 else "x509",
                "names": names,
                "watch_item": item,
                "tbs_sha256": tbs_hex,
                "unexpected": not pol.authorised,
                "severity": pol.severity if pol.watched else "info",
                "issuer": None,
                "serial": None,
                "not_before": None,
                "not_after": None,
                "cert_sha256": None,
                "pubkey_sha256": None,
            }
            silent = pol.authorised and not pol.report
            if state.add_event(event, (log_id, idx, event["entry_type"]), silent):
                queued += 1
        db.executemany("INSERT OR IGNORE INTO watch_items VALUES (?, ?)", [(i, time.time()) for i in new])
    return queued
