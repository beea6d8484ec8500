"""Report certificates already processed when a new name is watched, without asking any log.

The names index (state table ``name_index``) keeps every processed entry's names, log position
and TBS hash for ``[monitor] names_retention_days``. A watch item seen for the first time is
looked up there; each certificate found becomes a ``discovered_cert`` event marked
``backfill: true`` (one per TBS hash, as for live alerts). The compact index keeps no issuer or
key, so those fields are null; the log position says where to fetch the rest.
"""

from __future__ import annotations

import time

from .match.rules import Rules
from .state import StateDB


def backfill(state: StateDB, rules: Rules) -> int:
    """Queue events for watch items not backfilled before; returns how many were queued."""
    seen = {r[0] for r in state.db.execute("SELECT item FROM watch_items")}
    new = [i for i in rules.watch_items if i not in seen]
    if not new:
        return 0
    urls = dict(state.db.execute("SELECT log_id, url FROM logs").fetchall())
    queued = 0
    with state.transaction() as db:
        for item in new:
            for _name, log_id, idx, etype, tbs in state.names_under(item):
                names = [n for (n,) in db.execute(
                    "SELECT name_rev FROM name_index WHERE log_id=? AND idx=? ORDER BY rowid", (log_id, idx))]
                names = [".".join(reversed(n.split("."))) for n in names]
                tbs_hex = tbs.hex()
                pol = rules.policy.evaluate(names, None, "", tbs_hex)
                event = {
                    "event": "discovered_cert", "id": f"discovered_cert:{tbs_hex}",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "backfill": True,
                    "log_url": urls.get(log_id), "log_id": log_id, "index": idx,
                    "entry_type": "precert" if etype == 1 else "x509", "names": names,
                    "watch_item": item, "tbs_sha256": tbs_hex, "unexpected": not pol.authorised,
                    "severity": pol.severity if pol.watched else "info",
                    "issuer": None, "serial": None, "not_before": None, "not_after": None,
                    "cert_sha256": None, "pubkey_sha256": None,
                }
                silent = pol.authorised and not pol.report
                if state.add_event(event, (log_id, idx, event["entry_type"]), silent):
                    queued += 1
            db.execute("INSERT OR IGNORE INTO watch_items VALUES (?, ?)", (item, time.time()))
    return queued
