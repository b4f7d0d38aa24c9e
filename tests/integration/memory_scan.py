#!/usr/bin/env python3
"""memory_scan.py PID SECRETS_FILE: searches the memory of a running process
(what a core dump would hold: every readable mapping but files mapped
read-only, through /proc/PID/mem, which needs root or ptrace rights) for each
secret of SECRETS_FILE (one a line), as UTF-8 and as UTF-16LE. Prints
"secret N: found in <mapping>" without the secret, and the bytes scanned.
Exits 1 when any is found."""
import sys

pid, secrets_file = int(sys.argv[1]), sys.argv[2]
secrets = [s for s in open(secrets_file, encoding="utf-8").read().split("\n") if s]
needles = []
for i, s in enumerate(secrets):
    needles.append((i, "UTF-8", s.encode()))
    needles.append((i, "UTF-16LE", s.encode("utf-16-le")))
found, context, scanned, skipped = [], [], 0, 0
LIMIT = 1 << 30  # sanitizer shadow and reserved regions: huge, never data
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        perms = fields[1]
        path = fields[5] if len(fields) > 5 else "[anon]"
        if perms[0] != "r" or end - start > LIMIT or path == "[vvar]":
            skipped += end - start
            continue
        if path.startswith("/") and "w" not in perms:
            continue  # program text and read-only data of files
        pos, carry = start, b""
        while pos < end:
            n = min(end - pos, 1 << 24)
            try:
                mem.seek(pos)
                chunk = mem.read(n)
            except OSError:
                chunk = b""
            if not chunk:
                carry = b""
                pos += n
                continue
            data = carry + chunk
            for i, enc, needle in needles:
                at = data.find(needle)
                if at >= 0:
                    found.append((i, enc, path))
                    # What surrounds it (the secret masked) tells which buffer holds it.
                    around = data[max(0, at - 48):at] + b"*" * 4 + data[at + len(needle):at + len(needle) + 24]
                    context.append(f"secret {i + 1} at {start + at:#x}: "
                                   + "".join(chr(b) if 32 <= b < 127 else "." for b in around))
            carry = data[-256:]
            scanned += len(chunk)
            pos += n
for i, enc, path in sorted(set(found)):
    print(f"secret {i + 1} ({enc}): found in {path}")
for line in context[:20]:
    print(line, file=sys.stderr)
print(f"scanned {scanned // (1 << 20)} MiB of pwsyncd's memory for {len(secrets)} secrets; {len(set(found))} found")
sys.exit(1 if found else 0)
