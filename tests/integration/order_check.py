#!/usr/bin/env python3
"""Ordering and completeness at the logging (mirror) target, and the audit's
accounting, after a capture flood (tests/integration/flood_lib.sh).

    order_check.py WORK RUN CHANGES

WORK holds expected.json (each account's last password, each password's
account and sequence number), mirror.log (one delivery a line: account,
password hash, then optional fields) and audit.json (`pwsync audit --json`).
Two applications: each change queues two jobs exactly once (a change sent
again after a crash that had been stored is damped, never queued twice), and
each job ends delivered or superseded. Prints one summary line and up to ten
PROBLEM lines; exits 1 when there is a problem.
"""
import collections
import hashlib
import json
import sys

work, run, changes = sys.argv[1], sys.argv[2], int(sys.argv[3])
exp = json.load(open(f"{work}/expected.json"))
order, last = exp["order"], exp["last"]
seen, problems, dupes = {}, [], 0
for line in open(f"{work}/mirror.log"):
    account, h = line.split()[:2]
    if h not in order:
        problems.append(f"mirror got a password never sent ({account} {h})")
        continue
    u, s = order[h]
    if not account.lower().endswith(u.lower()):
        problems.append(f"mirror: {account} got {u}'s password")
    prev = seen.get(u, 0)
    if s < prev:
        problems.append(f"mirror: {u} got change {s} after change {prev}")
    dupes += s == prev
    seen[u] = max(prev, s)
for u, pw in last.items():
    want = order[hashlib.sha256(pw.encode()).hexdigest()[:16]][1]
    if seen.get(u) != want:
        problems.append(f"mirror: {u} ended at change {seen.get(u)}, the last sent was {want}")
audit = json.load(open(f"{work}/audit.json"))
records = audit if isinstance(audit, list) else audit.get("records", audit.get("audit", []))
count = collections.Counter()
for r in records:
    if run in r.get("object", ""):
        count[r["action"]] += 1
queued = count["job.queued"]
closed = count["job.delivered"] + count["job.superseded"]
if queued != 2 * changes:
    problems.append(f"audit: {queued} jobs queued for {changes} changes to two applications")
if queued != closed + count["job.dead"] or count["job.dead"]:
    problems.append(f"audit: {queued} jobs queued but {count['job.delivered']} delivered, "
                    f"{count['job.superseded']} superseded, {count['job.dead']} dead")
print(f"mirror deliveries in order for {len(seen)} accounts ({dupes} repeated after a crash); audit: " +
      ", ".join(f"{k} {v}" for k, v in sorted(count.items())))
for p in problems[:10]:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
