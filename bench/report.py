#!/usr/bin/python3
"""bench/report.py RESULTS.json BENCHMARKS.md [MORE.json...] — the tables of bench/run.

Reads the JSON lines bench/run wrote and writes the results page: the
machine (nproc, CPU model, RAM, load while measuring), date, commit, then one
table per question with the targets marked met / missed. The text around
the tables (findings, reasons) is written by hand in BENCHMARKS.md below
ANALYSIS_MARKER and kept as it is when the tables are rewritten.
MORE.json: results of other runs (e.g. bench/results-peer.json,
bench/results-bigdomain.json, bench/results-rules.json) that add the peer,
big-domain and mapping-rules sections,
each shown with the commit and load of its own run.
"""
import json
import os
import platform
import subprocess
import sys
import time

results_path, doc_path = sys.argv[1], sys.argv[2]
ANALYSIS_MARKER = "<!-- analysis: written by hand, kept by bench/report.py -->"
here = os.path.dirname(os.path.abspath(__file__))


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


rows = load(results_path)
more = [load(path) for path in sys.argv[3:]]


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=here).stdout.strip()
    except OSError:
        return "?"


def find(what, **kw):
    return [r for r in rows if r.get("what") == what and all(r.get(k) == v for k, v in kw.items())]


def one(what, key="value", **kw):
    found = find(what, **kw)
    return found[0].get(key) if found else None


def f(v, digits=0):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def run_line(rs):
    r = next((x for x in rs if x.get("what") == "run"), {})
    e = next((x for x in rs if x.get("what") == "run_end"), {})
    t = next((x for x in rs if x.get("what") == "total_seconds"), {})
    return (f"Run of commit {r.get('commit', '?')}, load {r.get('load_at_start', '?')} (start) / "
            f"{e.get('load_at_end', '?')} (end), {f(t.get('value'))} s in all.")


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def extra(w, main_rows, more_rows):
    """The peer (samba-tool user syncpasswords) and big-domain sections."""
    main_has_peer = any(r.get("what", "").startswith("peer_") for r in main_rows)
    for rs in more_rows + [main_rows]:
        if is_rules(rs) and (rs is main_rows or not is_rules(main_rows)):
            rules_section(w, rs)
        get = lambda what: [r for r in rs if r.get("what") == what]
        drain, plat = get("peer_syncpasswords_drain"), get("peer_syncpasswords_latency")
        if (drain or plat) and (rs is main_rows or not main_has_peer):
            lat = get("capture_to_external_latency")
            w("## A peer: Samba's `samba-tool user syncpasswords --script`, side by side")
            w("")
            w(run_line(rs) + " Both flows go from an admin `unicodePwd` reset committed on the test DC to")
            w("the new password working on slapd (a bind every 5 ms), one change at a time, with")
            w("`pwsync-bench latency`; pwsync with its capture hook (pre-commit) and DirSync watcher as")
            w("deployed, Samba's tool with `password hash gpg key ids` and a script running `ldappasswd`.")
            w("")
            w("| | pwsync | samba-tool syncpasswords --script |")
            w("|---|---|---|")
            if lat or plat:
                def cell(x, key):
                    return f"{f(x[0][key])} ms" if x else "–"
                w(f"| latency p50 | {cell(lat, 'p50_ms')} | {cell(plat, 'p50_ms')} |")
                w(f"| latency p95 | {cell(lat, 'p95_ms')} | {cell(plat, 'p95_ms')} |")
                w(f"| latency p99 | {cell(lat, 'p99_ms')} | {cell(plat, 'p99_ms')} |")
                w(f"| latency max | {cell(lat, 'max_ms')} | {cell(plat, 'max_ms')} |")
                w(f"| changes (arrived) | {f(lat[0]['changes']) + ' (' + f(lat[0]['arrived']) + ')' if lat else '–'} | "
                  f"{f(plat[0]['changes']) + ' (' + f(plat[0]['arrived']) + ')' if plat else '–'} |")
                w(f"| AD write as the admin sees it, p50 / p99 | "
                  f"{f(lat[0]['ad_write_p50_ms']) + ' / ' + f(lat[0]['ad_write_p99_ms']) + ' ms (runs the capture hook)' if lat else '–'} | "
                  f"{f(plat[0]['ad_write_p50_ms']) + ' / ' + f(plat[0]['ad_write_p99_ms']) + ' ms (GnuPG-encrypts the cleartext)' if plat else '–'} |")
            caps = {r["threads"]: r for r in get("pwsync_capture_to_slapd")}
            tp = ", ".join(f"{f(caps[c].get('arrived_per_second'))} at concurrency {c}" for c in sorted(caps))
            if drain:
                d = drain[0]
                w(f"| Windows → External throughput (changes/s arriving in slapd) | {tp or '–'} | "
                  f"{f(d['per_second'], 1)} ({f(d['arrived'])} of {f(d['changes'])} queued changes drained in "
                  f"{f(d['seconds'], 1)} s by one `--no-wait` run; {f(d.get('steady_per_second'), 1)}/s first to last arrival) |")
            w("")
            w("How the peer runs (bench/run, phase `peer`):")
            w("")
            w("- A GnuPG key made for the run (`gpg --batch --quick-gen-key`, no passphrase, `GNUPGHOME`")
            w("  private to the run); its fingerprint as `password hash gpg key ids` in the run's copy of the")
            w("  test DC's smb.conf; the DC restarted (`testenv/env restart-samba`) with `GNUPGHOME` exported,")
            w("  since Samba reads the option and the keyring at start. From then on every password write")
            w("  stores the cleartext GnuPG-encrypted in `supplementalCredentials` (`Primary:SambaGPG`).")
            w("  `python3-gpg` (needed by `--decrypt-samba-gpg`) is installed by bench/run if missing.")
            w("- `samba-tool user syncpasswords --cache-ldb-initialize --decrypt-samba-gpg")
            w("  --attributes=sAMAccountName,virtualClearTextUTF8 --script=bench/peer-sync-script`, then one")
            w("  `--no-wait` pass over the existing accounts (no cleartext stored for them yet: skipped).")
            w("- The script reads the LDIF of one account, pipes the cleartext to `ldappasswd -T /dev/stdin` as")
            w("  slapd's rootdn (never in argv, environment or a file) and answers `DONE-EXIT:`. samba-tool")
            w("  runs it once per changed account, one at a time, after decrypting the GnuPG blob.")
            w("- Throughput: the resets are made while the tool is stopped (4 threads), then one")
            w("  `samba-tool user syncpasswords --no-wait` drains them: the peer's own rate, not the DC's.")
            w("  pwsync's figure is the Windows → External rate of the same run (post-commit captures through")
            w("  the listener until slapd has them all, as in the throughput table).")
            w("- Latency: the tool in its default mode (sync loop: DirSync plus the notification control),")
            w("  measured exactly as pwsync's latency phase, as many changes as fit in about 2 minutes after")
            w("  10 warm-up changes.")
            leak = [r for r in rs if r.get("what") == "peer_bench_passwords_in_logs"]
            if leak:
                w(f"- Bench passwords found in samba-tool's output and the DC's log: {leak[0]['value']}.")
            if drain and drain[0].get("note"):
                w(f"- The drain record: {drain[0]['note']}.")
            w("")
            if lat and plat and drain and caps:
                best = max(r.get("arrived_per_second") or 0 for r in caps.values())
                def than(mine, theirs, better, worse):
                    r = theirs / max(mine, 0.001)
                    return f"{f(r, 1)}× {better}" if r >= 1 else f"{f(1 / max(r, 0.001), 1)}× {worse}"
                w("Reading: with the same DC, the same slapd and the same measurement, pwsync's change arrives "
                  f"{than(lat[0]['p50_ms'], plat[0]['p50_ms'], 'sooner', 'later')} at the median and "
                  f"{than(lat[0]['p99_ms'], plat[0]['p99_ms'], 'sooner', 'later')} at p99, and pwsync delivers "
                  f"{than(drain[0]['per_second'], best, 'more', 'fewer')} changes per second "
                  f"({f(best)} against {f(drain[0]['per_second'], 1)}). The peer is serial by design: samba-tool handles one account")
                w("at a time — a DirSync search, a GnuPG decryption (gpg-agent), a new process for the script, a new")
                w("`ldappasswd` process with its own TLS connection, then an update of its cache ldb — while pwsync")
                w("delivers over pooled connections with several deliveries in flight. The other side of the")
                w("ledger is the AD write as the admin sees it (the AD-write row): pwsync's pre-commit capture hook")
                w("(a process and a principal bind with scrypt inside Samba's password write) makes it slower than")
                w("Samba's GnuPG encryption of the cleartext does (compare the raw Samba reset rate in the")
                w("throughput table). Both tools meet the latency target (p99 ≤ 1 s) on this domain; the peer")
                w("keeps every cleartext, encrypted to one GnuPG key, in the directory database, and its")
                w("`--script` is called once per changed account with the cleartext on a pipe.")
                w("")
        big = get("big_domain_users")
        # A rules run creates a big domain too: its DirSync figures are shown
        # only when no big-domain run of its own is there.
        if big and is_rules(rs) and any(x is not rs and not is_rules(x) and
                                         any(r.get("what") == "big_domain_users" for r in x)
                                         for x in more_rows + [main_rows]):
            big = []
        if big:
            full = get("dirsync_big_full")
            p0 = [r["ms"] for r in get("dirsync_big_0_changed")]
            p10 = get("dirsync_big_10_changed")
            w(f"## The watcher on a domain of {f(big[0]['value'])} users")
            w("")
            w(run_line(rs) + " Users without passwords added with `ldbadd --nosync` on sam.ldb")
            w("while the DC is stopped (`PWSYNC_BENCH_BIG_DOMAIN`, see bench/run's header), then `pwsync-bench")
            w("dirsync` as the watcher's service account: a full sync, then three rounds of a poll with")
            w("nothing changed and a poll after 10 admin resets of users spread over the domain.")
            w("")
            w("| | |")
            w("|---|---|")
            w(f"| users created | {f(big[0]['value'])} in {f(one_of(rs, 'big_domain_ldbadd_seconds'))} s "
              f"({f(one_of(rs, 'big_domain_ldbadd_users_per_s'))} users/s) |")
            chunks = get("big_domain_chunk")
            if chunks:
                w(f"| creation rate per ldbadd of {f(chunks[0]['users'])} (users/s, in order) | "
                  f"{', '.join(f(c['per_second']) for c in chunks)} |")
            asked = one_of(rs, "big_domain_users_asked")
            if asked and asked > big[0]["value"]:
                w(f"| asked for | {f(asked)} users: creation stopped at its time limit (PWSYNC_BENCH_BIG_SECONDS) |")
            if full:
                w(f"| DirSync full sync | {f(full[0]['ms'])} ms, {f(full[0]['events'])} objects |")
            if p0:
                w(f"| poll, nothing changed (3 polls) | median {f(median(p0), 1)} ms ({', '.join(f(x, 1) for x in p0)}) |")
            if p10:
                w(f"| poll, 10 users changed (3 polls) | median {f(median([r['ms'] for r in p10]), 1)} ms "
                  f"({', '.join(f(r['ms'], 1) for r in p10)}); events {', '.join(str(r['events']) for r in p10)}, "
                  f"password changes {', '.join(str(r.get('password_changed')) for r in p10)} |")
            usn = get("big_usnchanged_search")
            if usn:
                w(f"| the same \"changed since\" as a `(uSNChanged>=N)` ldapsearch, nothing changed (5 runs) | median "
                  f"{f(median([r['usn_ms'] for r in usn]))} ms, against {f(median([r['base_ms'] for r in usn]))} ms for a base "
                  "search (process, TLS and bind alone) |")
            # The small domain: this run's own dirsync phase if it had one, else the main run's.
            here_small = get("dirsync-full") and get("dirsync_0_changed") and get("dirsync_10_changed")
            pick = get if here_small else find
            small0, small10, smallfull = pick("dirsync_0_changed"), pick("dirsync_10_changed"), pick("dirsync-full")
            if small0 and small10 and smallfull:
                w(f"| the same on the {'same' if here_small else 'main'} run's bench domain ({f(smallfull[0]['events'])} objects) | full "
                  f"{f(smallfull[0]['ms'])} ms, nothing changed {f(small0[0]['ms'], 1)} ms, 10 changed {f(small10[0]['ms'], 1)} ms |")
            w("")
            if full and p0 and p10 and smallfull and small0 and small10:
                objs = full[0]["events"] / max(smallfull[0]["events"], 1)
                m0, m10 = median(p0), median([r["ms"] for r in p10])
                w(f"Reading: the domain has {f(objs, 0)}× the objects of the {'same' if here_small else 'main'} run's bench domain. The full sync grows with it "
                  f"({f(full[0]['ms'] / max(smallfull[0]['ms'], 0.001), 1)}× the time); a poll costs "
                  f"{f(m0 / max(small0[0]['ms'], 0.001), 1)}× (nothing changed) and {f(m10 / max(small10[0]['ms'], 0.001), 1)}× "
                  f"(10 changed) the small domain's, and returns exactly the changed accounts. A poll after 10 changes "
                  f"costs {f(m10 / max(full[0]['ms'], 0.001) * 100, 1)} % of a full sync of this domain."
                  + ("" if here_small else " The two runs were on a shared machine at different times (load in each run line), so small ratios are within noise."))
                w("")
            if usn and p0:
                w("What this means for the target (cost per poll proportional to the changes, not the users):")
                w("pwsync's share is — a poll hands it only the changed accounts (0 or 10 events above) and it does")
                w("work only for those. The DC's share is not: Samba 4.17 answers \"what changed since\" in time that")
                w("grows with the number of objects, for DirSync and for a `(uSNChanged>=N)` search alike (the")
                w("uSNChanged row minus the base row ≈ the DirSync poll), i.e. Samba scans instead of using an")
                w("index for it. That is Samba's, not pwsync's; pwsync cannot ask the DC a cheaper question")
                w("(the notification control, which the watcher keeps outstanding, says *that* something changed,")
                w("not what since a point, and is not replayed across reconnects). What pwsync does control is how")
                w("often it asks: the watcher polls when a notification arrives and otherwise every `poll-interval`")
                w("(default 10 s, docs/GATEWAY.md), and each poll collects every change since the last one; an idle")
                w("20,000-user domain costs the DC one ≈ 150 ms poll per 10 s here (≈ 1.5 % of a core).")
                w("")


def is_rules(rs):
    return any(r.get("what") in ("rules_apply", "rules_error") for r in rs)


def rules_section(w, rs):
    """Mapping rules over the big domain (bench/run, phase `rules`; issue 17)."""
    get = lambda what: [r for r in rs if r.get("what") == what]
    group, previews, apply_ = get("rules_group"), get("rules_preview"), get("rules_apply")
    counts = {r["after"]: r for r in get("rules_mappings")}
    polls = get("rules_poll")
    n = group[0]["members"] if group else (one_of(rs, "big_domain_users") or 0)
    w(f"## Mapping rules over {f(n)} accounts")
    w("")
    ended = any(r.get("what") == "run_end" for r in rs)
    w(run_line(rs) + ("" if ended else " **The run stopped before its end** (the steps below are those it finished).")
      + " `bench/run` phase `rules`: the big domain's users (enabled, no password),")
    w("all members of one group `CN=BigStaff`, and one rule `pwsync rule create big --app BIG --scope")
    w("group=BigStaff --external '{sAMAccountName|lower}'` (the application on a `null` adapter).")
    w("")
    w("| | |")
    w("|---|---|")
    if group:
        g = group[0]
        chunks = get("rules_group_chunk")
        w(f"| group of {f(g['members'])} members made | {f(g['ms'])} ms ({g.get('how', '')}, "
          f"{f(g['chunk'])} members per ldbmodify: {', '.join(f(c['ms']) + ' ms' for c in chunks)}) |")
    if previews:
        p0 = previews[0]
        w(f"| `pwsync rule preview big` ({len(previews)} run(s)) | "
          f"{', '.join(f(p['ms']) + ' ms' for p in previews)} (wall clock; the command reports "
          f"{', '.join(f(p['reported_ms']) for p in previews)} ms); plan: {f(p0['create'])} creates, "
          f"{f(p0['conflicts'])} conflicts, {f(p0['missing'])} missing attributes |")
    if apply_:
        a = apply_[0]
        c = counts.get("apply")
        w(f"| `pwsync rule apply big` (initial evaluation, {f(a['create'])} mappings created in one transaction) | "
          f"{f(a['ms'])} ms (reports {f(a['reported_ms'])} ms); mappings in the store after: "
          f"{f(c['count']) if c else '–'} of {f(c['want']) if c else '–'} |")
    ms = {r["how"]: r for r in get("rules_members_search")}
    if ms:
        w("| the group's members by one paged ldapsearch (the DC alone), nested rule (`memberOf:…1941:=`) / plain `memberOf` | "
          + " / ".join(f"{f(ms[h]['ms'])} ms ({f(ms[h]['found'])} found)" if h in ms else "–" for h in ("in_chain", "plain")) + " |")
    for e in get("rules_error"):
        what = f"`pwsync rule {e['step']} big`" if e["step"] in ("preview", "apply") else f"step {e['step']}"
        w(f"| {what} failed | after {f(e['ms'])} ms: {e['error'].splitlines()[0] if e['error'] else '?'} |")
    dto = one_of(rs, "rules_directory_timeout_s")
    if dto:
        w(f"| `[directory] timeout` of the CLI and pwsyncd (per LDAP operation; the rule's search is one) | "
          f"{f(dto)} s (default 30 s) |")
    rss = one_of(rs, "rules_pwsyncd_rss_kib")
    if rss:
        w(f"| pwsyncd RSS at the end | {f(rss / 1024, 1)} MiB |")
    w("")
    if polls:
        interval = one_of(rs, "rules_interval") or 2
        w(f"pwsyncd with `[gateway] rule-interval = {interval}`: after each step, the lines it logs")
        w("(`mapping rules: full|incremental round: ... in N ms`, and `rule big: ...` for a non-empty plan),")
        w("waited for up to 60 s and then until none came for two intervals. \"waited\" is from the end of")
        w("the step to the first line (the interval's wait included). \"n/a\": the pwsyncd of this run")
        w("logs no round lines (only plans that did something), so the round's cost is not known.")
        w("\"pwsyncd CPU\": its user + system time from the step's start to the end of the wait (all its")
        w("threads: the rules' rounds, the watcher's polls, the rest idle).")
        w("")
        labels = {"startup": "pwsyncd started (after the apply)", "idle_10s": "nothing changed for 10 s",
                  "reset_10": "10 password resets (admin)", "reset_100": "100 password resets (admin)",
                  "unmember_10": "10 members removed from BigStaff", "disable_10": "10 members disabled"}
        w("| step | rounds (kind) | accounts examined | objects changed | round time | created / removed | waited | pwsyncd CPU in the step | mappings after |")
        w("|---|---|---|---|---|---|---|---|---|")
        # A pwsyncd that logs rounds logged none after a step: no round ran (n/a only without such lines).
        logs_rounds = any(r["log"] == "rounds" for r in polls)
        for r in polls:
            na = "n/a" if not logs_rounds else ("–" if not r["rounds"] else None)
            kinds = f"{r['rounds']} ({r['kind']})" if r["rounds"] else ("0" if logs_rounds else "n/a")
            c = counts.get(r["step"])
            # Several rounds after one step (a change straddling an interval): each shown.
            each = lambda key, unit="": " + ".join(("–" if x[key] is None else f(x[key])) + unit for x in r["lines"]) or "–"
            w(f"| {labels.get(r['step'], r['step'])} | {kinds} | {na or each('examined')} | "
              f"{na or each('objects_changed')} | {na or each('ms', ' ms')} | "
              f"{'–' if r['created'] is None else f(r['created']) + ' / ' + f(r['removed'])} | "
              f"{'none' if r['waited_ms'] is None else f(r['waited_ms']) + ' ms'} | "
              f"{'–' if r.get('pwsyncd_cpu_ms') is None else f(r['pwsyncd_cpu_ms']) + ' ms'} | "
              f"{f(c['count']) + ' (want ' + f(c['want']) + ')' if c else ''} |")
        w("")
    if previews and apply_ and n:
        pm = median([p["ms"] for p in previews])
        w(f"Reading: a preview costs {f(pm / n, 1)} ms per account in scope (median of the previews), the")
        w(f"apply {f(apply_[0]['ms'] / n, 1)} ms per account (the same evaluation plus the mappings' transaction).")
        rounds = [x for r in polls for x in r["lines"]]
        full = [x for x in rounds if x["kind"] == "full"]
        inc = [x for x in rounds if x["kind"] == "incremental"]
        if full and inc:
            w(f"pwsyncd's full round examined {f(full[0]['examined'])} accounts in {f(full[0]['ms'])} ms; its incremental")
            w(f"rounds examined {', '.join(f(x['examined']) for x in inc)} accounts in "
              f"{', '.join(f(x['ms']) for x in inc)} ms.")
            # A step's last round runs after its changes are made; the
            # earlier ones overlap them on a DC that may serve one request at a time.
            last = [r["lines"][-1] for r in polls if r["lines"] and r["lines"][-1]["kind"] == "incremental"]
            if last:
                worst = max(x["ms"] for x in last)
                w(f"Each step's last incremental round, after its changes were made: {', '.join(f(x['ms']) for x in last)} ms"
                  f" ({f(100 * worst / full[0]['ms'], 1)} % of the full round at most); the slower ones ran while the"
                  " step's changes were still being made on the DC"
                  + (": the cost per poll follows the changes, not the scope." if worst * 10 < full[0]["ms"]
                     else ", and even the last ones cost more than a tenth of the full round: the cost per poll does not follow the changes here."))
        elif polls and not any(r["log"] == "rounds" for r in polls):
            w("This run's pwsyncd logs no round lines: it evaluates every enabled rule over its whole scope")
            w("whenever the DC's highestCommittedUSN moved (gateway/src/ad/rule_keeper.cpp at the run's")
            w("commit), so each such round costs about what a preview does, whatever the number of changes.")
        w("")


def one_of(rs, what):
    return next((r.get("value") for r in rs if r.get("what") == what), None)


cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
mem_kib = int(sh("awk '/MemTotal/{print $2}' /proc/meminfo") or 0)
meta = {
    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "commit": sh("git rev-parse --short HEAD"),
    "nproc": sh("nproc"),
    "cpu": cpu,
    "ram": f"{mem_kib / 1024 / 1024:.1f} GiB",
    "kernel": platform.release(),
    "load": sh("cut -d' ' -f1-3 /proc/loadavg"),
}
# Prefer what bench/run recorded while it ran.
if find("run"):
    meta["commit"] = find("run")[0].get("commit") or meta["commit"]
    meta["load"] = find("run")[0].get("load_at_start", "") + " (start) / " + (
        (find("run_end") or [{}])[0].get("load_at_end", meta["load"])) + " (end)"
# The load at the start says whether something else was running; the end's
# is the run's own servers. No start recorded: no judgement.
start = (find("run") or [{}])[0].get("load_at_start", "").split()
load1 = float(start[0]) if start and start[0].replace(".", "", 1).isdigit() else 0.0
contended = load1 > float(meta["nproc"] or 1)

out = []
w = out.append
w("# Benchmarks")
w("")
w("Produced by `bench/run` (see bench/README.md); every figure below comes from")
w("`bench/results.json` of the run described here. Re-run to refresh.")
w("")
w("| | |")
w("|---|---|")
w(f"| date | {meta['date']} |")
w(f"| commit | {meta['commit']} |")
w(f"| CPUs (`nproc`) | {meta['nproc']} |")
w(f"| CPU model | {meta['cpu']} |")
w(f"| RAM | {meta['ram']} |")
w(f"| kernel | {meta['kernel']} |")
w(f"| load average (1, 5, 15 min) | {meta['load']} |")
w(f"| total run time | {f(one('total_seconds'))} s |")
w("")
if contended:
    w(f"**Not a quiet start**: the 1-minute load average at the start ({load1}) exceeded the")
    w(f"{meta['nproc']} CPUs (work that ran just before or beside the run). Absolute")
    w("figures may be lower than on a quiet machine; ratios measured in the same run are")
    w("more meaningful than absolute numbers.")
    w("")

# 1-2: raw limits and through pwsync
w("## Throughput: raw directories and through pwsync (changes/s)")
w("")
w("| concurrency | slapd Password Modify (raw) | Samba unicodePwd reset (raw) | W→E captures accepted | W→E arrived in slapd | ratio to slower raw | E→W full (AD written) | ratio to Samba raw | partial accepted |")
w("|---|---|---|---|---|---|---|---|---|")
for c in (1, 4, 16):
    slapd = one("raw_slapd_pwmod", "per_second", threads=c)
    samba = one("raw_samba_reset", "per_second", threads=c)
    cap = one("pwsync_capture_to_slapd", "per_second", threads=c)
    arr = one("pwsync_capture_to_slapd", "arrived_per_second", threads=c)
    full = one("pwsync_full_to_samba", "per_second", threads=c)
    part = one("pwsync_partial", "per_second", threads=c)
    slower = min(x for x in (slapd, samba) if x) if (slapd or samba) else None
    r1 = f(arr / slower, 2) if arr and slower else "–"
    r2 = f(full / samba, 2) if full and samba else "–"
    w(f"| {c} | {f(slapd)} | {f(samba, 1)} | {f(cap)} | {f(arr)} | {r1} | {f(full, 1)} | {r2} | {f(part)} |")
w("")
w("Bulk user creation (users/s): slapd one `ldapadd` LDIF "
  f"{f(one('slapd_bulk_ldapadd_users_per_s'))}; Samba `ldapadd` over ldaps "
  f"{f(one('samba_bulk_ldapadd_users_per_s'))}; Samba `ldbadd --nosync` on sam.ldb while stopped "
  f"{f(one('samba_bulk_ldbadd_offline_users_per_s'))}.")
w("")

# 2b issue 16's goals, each a ratio measured in this run
if find("pwsync_capture_to_slapd") or find("hook_cost") or find("core_null_cpus_0"):
    w("## Issue 16's goals in this run")
    w("")

    def ratios(num_what, num_key, den_what):
        # The raw figure measured right before pwsync's (bench/run: beside),
        # else the raw phase's.
        cells = []
        for c in (1, 4, 16):
            a = one(num_what, num_key, threads=c)
            b = one(den_what + "_beside", "per_second", threads=c) or one(den_what, "per_second", threads=c)
            cells.append(f"{f(a, 1)} / {f(b, 1)} = {f(a / b, 2)}" if a and b else "–")
        return ", ".join(cells)
    w("Each ratio divides pwsync's rate by the raw rate measured right before it at the same")
    w("concurrency with pwsyncd stopped (bench/run's `beside`), so the directories are in the same")
    w("state for both.")
    w("")
    w("| figure | measured | goal |")
    w("|---|---|---|")
    w(f"| Windows → External arrived in slapd ÷ slapd raw, concurrency 1, 4, 16 | "
      f"{ratios('pwsync_capture_to_slapd', 'arrived_per_second', 'raw_slapd_pwmod')} | ≥ 0.9 |")
    def ceilings():
        # What the other processes of the same run left for pwsyncd: every
        # CPU of the machine spent only on their share of each change
        # (slapd's write, Samba's state check, the load generator's TLS and
        # verifying binds), as a rate, ÷ slapd raw. pwsyncd's rate can not
        # pass it on this machine however little pwsyncd costs.
        cells = []
        for c in (1, 4, 16):
            r = (find("pwsync_capture_to_slapd", threads=c) or [None])[0]
            b = one("raw_slapd_pwmod_beside", "per_second", threads=c) or one("raw_slapd_pwmod", "per_second", threads=c)
            cpu = (r or {}).get("cpu_ms", {})
            # A negative figure: a process ended meanwhile, its CPU unknown.
            if not r or not r.get("ok") or not b or any(cpu.get(k, -1) < 0 for k in ("slapd", "samba")):
                cells.append("–")
                continue
            others = (cpu["slapd"] + cpu["samba"] + r.get("bench_cpu_ms", 0)) / r["ok"]
            ceiling = int(r.get("nproc") or meta["nproc"] or 1) * 1000 / others if others else None
            cells.append(f"{f(ceiling, 1)} / {f(b, 1)} = {f(ceiling / b, 2)}" if ceiling else "–")
        return ", ".join(cells)
    w(f"| Windows → External's ceiling on this machine with pwsyncd free: CPUs ÷ the others' CPU per change (slapd, Samba answering pwsyncd's state check, load generator), ÷ slapd raw | "
      f"{ceilings()} | (what the others leave while the check stays) |")
    if find("raw_samba_check_beside"):
        w(f"| The DC answering pwsyncd's state check alone (a base search of the account with tokenGroups, pwsyncd stopped) ÷ slapd raw, concurrency 1, 4, 16 | "
          f"{ratios('raw_samba_check_beside', 'per_second', 'raw_slapd_pwmod')} | (no gateway that asks the DC first captures faster) |")
    w(f"| External → Windows full ÷ Samba raw, concurrency 1, 4, 16 | "
      f"{ratios('pwsync_full_to_samba', 'per_second', 'raw_samba_reset')} | ≥ 0.9 |")
    cores = [(find(f"core_null_cpus_{c}") or [None])[0] for c in ("0", "0,1")]
    w("| core alone (null adapter), accepted and delivered/s, 1 CPU / 2 CPUs | "
      + " / ".join(f(c["delivered_per_second"]) if c else "–" for c in cores) + " | ≥ 20,000 |")
    many = [(find(f"core_null_senders_cpus_{c}") or [None])[0] for c in ("0", "0,1")]
    if any(many):
        w("| the same with 256 senders instead of 32 (larger batches: the commit shared by more changes), 1 CPU / 2 CPUs | "
          + " / ".join(f(c["delivered_per_second"]) if c else "–" for c in many) + " | (the ceiling on this disk) |")
    mem = [(find(f"core_null_tmpfs_cpus_{c}") or [None])[0] for c in ("0", "0,1")]
    if any(mem):
        w("| the same, store on tmpfs beside it (the disk's flush free), 1 CPU / 2 CPUs | "
          + " / ".join(f(c["delivered_per_second"]) if c else "–" for c in mem) + " | (not a goal: the share of the disk) |")
    hc16 = find("hook_cost")
    if hc16:
        h = hc16[0]
        w(f"| AD reset with the capture hook ÷ without, p50 (p99) | {f(h['hook_p50_ms'], 1)} / {f(h['bare_p50_ms'], 1)} ms = "
          f"{f(h['ratio_p50'], 2)} ({f(h['hook_p99_ms'] / h['bare_p99_ms'], 2) if h['bare_p99_ms'] else '–'}) | ≤ 1.25 |")
    w("")

# 2c where the CPU went: every server's CPU time while each measurement ran
timed = [r for r in rows if "cpu_ms" in r and r.get("ok")]
def measured_wall(r):
    """A measurement's wall time: until every change arrived, where that was checked."""
    return r.get("seconds_until_all_arrived") or r["seconds"]


def changes_rate(r):
    """Changes per second: arrived where that was checked, else answered."""
    return r.get("arrived_per_second") or r["per_second"]


if timed:
    w("## Where the CPU went (ms of CPU per change, measured around each run)")
    w("")
    w("Each server's user + system time from /proc while the measurement ran, and the load")
    w("generator's own (`pwsync-bench`, TLS client and, for Windows → External, the binds that")
    w("verify each arrival), divided by the changes. \"busy\": all of it ÷ (wall time × CPUs).")
    w("")
    w("| measurement | concurrency | changes/s | pwsyncd | slapd | samba | postgres | load generator | busy |")
    w("|---|---|---|---|---|---|---|---|---|")
    for r in timed:
        n = r["ok"]
        cpu = r["cpu_ms"]
        wall = measured_wall(r)
        total = sum(max(v, 0) for v in cpu.values()) + r.get("bench_cpu_ms", 0)
        busy = total / (wall * 1000 * int(r.get("nproc", 1))) if wall else 0
        # Negative: a process that ended meanwhile (runs before bench/run
        # counted reaped children's time): not known.
        per = lambda v: f(v / n, 2) if v >= 0 else "–"
        w(f"| {r['what']} | {r['threads']} | {f(changes_rate(r))} | {per(cpu['pwsyncd'])} | {per(cpu['slapd'])} | {per(cpu['samba'])} | "
          f"{per(cpu['postgres'])} | {per(r.get('bench_cpu_ms', 0))} | {f(busy * 100)} % |")
    w("")
    with_writer = [r for r in timed if r.get("writer") and r["writer"].get("batches")]
    if with_writer:
        w("pwsyncd's store writer while each measurement ran (its /metrics before and after: one")
        w("writer at a time, docs/GATEWAY.md \"Monitoring\"). \"Busy\": its turn (running units of work,")
        w("committing them, and gathering: waiting, the turn held, for more writers to join a large")
        w("commit) ÷ the time between the two reads, which includes the load generator's start and end")
        w("(a short measurement, such as partial at 16, reads low); near 100 %, the writer is the limit.")
        w("")
        w("| measurement | concurrency | changes/s | writer busy | of it committing | of it gathering | commits | units per commit | commit, ms each |")
        w("|---|---|---|---|---|---|---|---|---|")
        for r in with_writer:
            wr = r["writer"]
            # The time between the two reads of /metrics (the counts span it).
            wall = wr.get("seconds") or measured_wall(r)
            turn = wr["running_ms"] + wr["committing_ms"] + wr.get("gathering_ms", 0)
            w(f"| {r['what']} | {r['threads']} | {f(changes_rate(r))} | {f(turn / (wall * 1000) * 100) if wall else '–'} % | "
              f"{f(wr['committing_ms'] / turn * 100) if turn else '–'} % | "
              f"{f(wr['gathering_ms'] / turn * 100) + ' %' if turn and 'gathering_ms' in wr else '–'} | {f(wr['batches'])} | "
              f"{f(wr['units'] / wr['batches'], 1)} | {f(wr['committing_ms'] / wr['batches'], 2)} |")
        w("")
    with_times = [r for r in timed if r.get("change_times")]
    if with_times:
        w("Where a change's time went, in ms per change: the sender's (the load generator's threads ×")
        w("the run's time ÷ the changes answered), and pwsyncd's own clocks around each change")
        w("(`pwsync_change_seconds_total`, its /metrics before and after): from the request to the")
        w("answer, and in it asking the directory (for a capture, the DC's answer to the state check;")
        w("for full sync, also the AD write) and the store (waiting for the writer's turn, and the")
        w("commit's flush). \"Engine, the rest\": pwsyncd's own work between them and its reads of the")
        w("store (a round trip to the database each on PostgreSQL, where the directory's part also holds")
        w("the read of the account's GUID). \"Outside\": the sender's time that pwsyncd's clock does not")
        w("see (TLS, the loopback, reading the request, the sender's own work).")
        w("")
        w("| measurement | concurrency | mode | changes | sender, per change | pwsyncd, request to answer | asking the directory | the store | engine, the rest | outside |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for r in with_times:
            sender = r["seconds"] * 1000 * r["threads"] / r["ok"] if r.get("ok") else 0
            for mode, t in r["change_times"].items():
                n = t["changes"]
                per = lambda v: f(v / n, 3)
                rest = t["all_ms"] - t["directory_ms"] - t["store_ms"]
                w(f"| {r['what']} | {r['threads']} | {mode} | {f(n)} | {f(sender, 3) if sender else '–'} | {per(t['all_ms'])} | "
                  f"{per(t['directory_ms'])} | {per(t['store_ms'])} | {per(rest)} | {f(sender - t['all_ms'] / n, 3) if sender else '–'} |")
        w("")

# 3 latency
lat = find("capture_to_external_latency")
w("## Latency: password change committed in Samba → new password works on slapd")
w("")
if lat:
    l = lat[0]
    w("| changes | arrived | p50 | p95 | p99 | max | AD write incl. capture hook (p50 / p99) |")
    w("|---|---|---|---|---|---|---|")
    w(f"| {l['changes']} | {l['arrived']} | {f(l['p50_ms'])} ms | {f(l['p95_ms'])} ms | {f(l['p99_ms'])} ms | "
      f"{f(l['max_ms'])} ms | {f(l['ad_write_p50_ms'])} / {f(l['ad_write_p99_ms'])} ms |")
w("")

# 3b the hook's cost inside every AD password change
hc = find("hook_cost")
if hc:
    h = hc[0]
    w("## The capture hook's cost inside every AD password change")
    w("")
    w(f"{f(h['changes'])} admin resets each way on one connection, interleaved: with pwsync's hook as the DC's")
    w("check password script (through a `sh` wrapper), and with `/bin/true` as that script."
      + (f" The gateway stored {f(h['stored'])} of the hook's {f(h['changes'])} changes (a hook that fails open"
         " would look cheap: bench/run stops when one is missing)." if "stored" in h else ""))
    w("")
    w("| | p50 | p99 |")
    w("|---|---|---|")
    w(f"| with the hook | {f(h['hook_p50_ms'], 1)} ms | {f(h['hook_p99_ms'], 1)} ms |")
    w(f"| without | {f(h['bare_p50_ms'], 1)} ms | {f(h['bare_p99_ms'], 1)} ms |")
    w(f"| ratio (goal ≤ 1.25 at p50) | {f(h['ratio_p50'], 2)} | "
      f"{f(h['hook_p99_ms'] / h['bare_p99_ms'], 2) if h['bare_p99_ms'] else '–'} |")
    w("")

# 4 core
w("## The core alone (`null` adapter, durable: success only after fsync)")
w("")
w("The writer's turn (the group commit's leader, one at a time) is timed in every run: running the")
w("batch's units of work (CPU), committing them (LMDB: writing the pages and flushing them), and")
w("gathering (after a commit of 8 units or more, waiting for more writers to join the next).")
w("\"Writer busy\" is that time ÷ the run's time: near 100 %, the writer is the limit.")
w("")
w("| CPUs (taskset) | client threads | accepted/s | accepted and delivered/s | writer busy | of it committing | of it gathering | running per unit | committing per batch |")
w("|---|---|---|---|---|---|---|---|---|")
for name in ("core_null_cpus_", "core_null_senders_cpus_", "core_null_tmpfs_cpus_"):
    for cpus in ("0", "0,1"):
        c = find(f"{name}{cpus}")
        if c:
            c = c[0]
            wr, cells = c.get("writer"), ["–"] * 5
            if wr and wr.get("units") and wr.get("batches") and c.get("delivered_seconds"):
                turn = wr["running_seconds"] + wr["committing_seconds"] + wr.get("gathering_seconds", 0)
                cells = [f"{f(turn / c['delivered_seconds'] * 100)} %", f"{f(wr['committing_seconds'] / turn * 100)} %",
                         f"{f(wr['gathering_seconds'] / turn * 100)} %" if "gathering_seconds" in wr else "–",
                         f"{f(wr['running_seconds'] / wr['units'] * 1e6, 1)} µs", f"{f(wr['committing_seconds'] / wr['batches'] * 1e3, 2)} ms"]
            where = " (tmpfs)" if "tmpfs" in name else ""
            w(f"| {len(cpus.split(','))}{where} | {c['threads']} | {f(c['accepted_per_second'])} | {f(c['delivered_per_second'])} | "
              + " | ".join(cells) + " |")
w("")
apart = {cpus: find(f"core_null_apart_cpus_{cpus}") for cpus in ("0", "0,1")}
if any(apart.values()):
    w("The two sides apart, 256 senders: the intake alone (the dispatcher stopped), then the")
    w("dispatcher alone draining the outbox the intake filled.")
    w("")
    w("| CPUs (taskset) | intake alone, accepted/s | dispatcher alone, delivered/s | both at once (above), delivered/s |")
    w("|---|---|---|---|")
    for cpus, a in apart.items():
        if a:
            both = find(f"core_null_senders_cpus_{cpus}")
            w(f"| {len(cpus.split(','))} | {f(a[0]['accepted_per_second'])} | {f(a[0].get('drain_per_second'))} | "
              f"{f(both[0]['delivered_per_second']) if both else '–'} |")
    w("")
mem = {cpus: find(f"core_null_tmpfs_cpus_{cpus}") for cpus in ("0", "0,1")}
if any(mem.values()):
    w("Beside each, the same store on tmpfs, where fdatasync returns at once: the difference is what")
    w("the disk's flush costs a durable commit on this machine (the share of the time per change that")
    w("waits for the disk or writes back to it).")
    w("")
    w("| CPUs (taskset) | on disk, delivered/s | on tmpfs, delivered/s | the disk's share of the time per change | commits on disk (changes per commit) |")
    w("|---|---|---|---|---|")
    for cpus, m in mem.items():
        d = find(f"core_null_cpus_{cpus}")
        if not m or not d:
            continue
        a, b = d[0]["delivered_per_second"], m[0]["delivered_per_second"]
        per = f"{f(d[0]['commits'])} ({f(d[0]['ok'] / d[0]['commits'], 1)})" if d[0].get("commits") else "–"
        w(f"| {len(cpus.split(','))} | {f(a)} | {f(b)} | {f((1 - a / b) * 100) if a and b else '–'} % | {per} |")
    w("")

# 4b the store backends side by side (issue 14: PostgreSQL ≥ 0.8× LMDB)
if find("core_null_postgresql_cpus_0,1") or find("pwsync_capture_to_slapd_postgresql"):
    w("## Store backends side by side: LMDB and PostgreSQL (loopback, same run)")
    w("")
    w("| figure | LMDB | PostgreSQL | PostgreSQL ÷ LMDB (goal ≥ 0.8) |")
    w("|---|---|---|---|")

    def side(label, what, key, **kw):
        a, b = one(what, key, **kw), one(what + "_postgresql", key, **kw)
        w(f"| {label} | {f(a, 1)} | {f(b, 1)} | {f(b / a, 2) if a and b else '–'} |")

    def core_side(label, cpus, key):
        a, b = one(f"core_null_cpus_{cpus}", key), one(f"core_null_postgresql_cpus_{cpus}", key)
        w(f"| {label} | {f(a, 1)} | {f(b, 1)} | {f(b / a, 2) if a and b else '–'} |")

    for cpus in ("0", "0,1"):
        n = len(cpus.split(","))
        core_side(f"core accepted and delivered/s, {n} CPU(s)", cpus, "delivered_per_second")
        core_side(f"core accepted/s, {n} CPU(s)", cpus, "accepted_per_second")
    for c in (1, 4, 16):
        side(f"W→E arrived in slapd/s, concurrency {c}", "pwsync_capture_to_slapd", "arrived_per_second", threads=c)
        side(f"E→W full (AD written)/s, concurrency {c}", "pwsync_full_to_samba", "per_second", threads=c)
        side(f"partial (store only) accepted/s, concurrency {c}", "pwsync_partial", "per_second", threads=c)
    w("")

# 5 scale
w("## Scale")
w("")
lm = find("load-mappings")
lk = find("lookup")
w("| | |")
w("|---|---|")
if lm:
    w(f"| mappings in the store | {f(lm[0]['count'])} (bulk load {f(lm[0]['per_second'])}/s through the store API) |")
w(f"| store size on disk | {f((one('store_kib') or 0) / 1024, 0)} MiB |")
if lk:
    w(f"| one mapping lookup by Windows account | first {f(lk[0]['first_us'], 1)} µs, median {f(lk[0]['p50_us'], 1)} µs, p99 {f(lk[0]['p99_us'], 1)} µs |")
w(f"| `pwsync mapping list --json` | {f(one('mapping_list_json_ms'))} ms |")
w(f"| pwsyncd RSS idle | {f((one('pwsyncd_rss_kib_idle_1m') or 0) / 1024, 1)} MiB |")
w(f"| pwsyncd RSS peak under capture load (16 connections) | {f((one('pwsyncd_rss_kib_peak_1m') or 0) / 1024, 1)} MiB |")
sl = find("scale_capture_load")
if sl:
    w(f"| captures accepted/s on the 1M store | {f(sl[0]['per_second'])} |")
d0 = find("dirsync_0_changed")
d10 = find("dirsync_10_changed")
dfull = find("dirsync-full")
if dfull:
    w(f"| DirSync full sync ({f(dfull[0]['events'])} objects) | {f(dfull[0]['ms'])} ms |")
if d0:
    w(f"| DirSync poll, nothing changed | {f(d0[0]['ms'], 1)} ms, {d0[0]['events']} events |")
if d10:
    w(f"| DirSync poll, 10 users changed | {f(d10[0]['ms'], 1)} ms, {d10[0]['events']} events ({d10[0]['password_changed']} password changes) |")
w("")

extra(w, rows, more)

# The analysis (targets met or missed and why, what was fixed, what is not
# ours) is written by hand in BENCHMARKS.md itself, after ANALYSIS_MARKER:
# a re-run keeps it as it is.
if os.path.exists(doc_path):
    previous = open(doc_path).read()
    at = previous.find(ANALYSIS_MARKER)
    if at >= 0:
        out.append(previous[at:].rstrip())
        w("")

with open(doc_path + ".tmp", "w") as fh:
    fh.write("\n".join(out) + "\n")
os.replace(doc_path + ".tmp", doc_path)
