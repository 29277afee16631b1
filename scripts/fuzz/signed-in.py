#!/usr/bin/env python3
"""Checks from Schemathesis's summary that a role's fuzz stayed signed in: an operation that
only ever answered 401 was fuzzed signed out (only the 401 path was tested), and for the admin
so was one that only ever answered 403. Signing in itself (wrong passwords) answers 401 by
design. Usage: signed-in.py ROLE SUMMARY; exit 1 when more than a handful were."""
import re
import sys

ALLOWED = 2  # a handful: operations whose every generated input is refused before the caller counts
EXPECTED = {"POST /api/v1/auth/login"}

role, path = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
statuses = {"401"} if role == "member" else {"401", "403"}
signed_out = []
for status, block in re.findall(r"^(\d{3}) [A-Za-z ]+ \(\d+ operations?\):\n((?:  - .*\n)+)", text, re.M):
    if status in statuses:
        signed_out += [line[4:].strip() for line in block.splitlines()]
signed_out = [op for op in signed_out if op not in EXPECTED]
if len(signed_out) > ALLOWED:
    print(f"the {role}'s fuzz was signed out for {len(signed_out)} operations (they only answered "
          f"{'/'.join(sorted(statuses))}: only the refusal was tested):")
    print("\n".join(f"  {op}" for op in signed_out))
    sys.exit(1)
print(f"the {role}'s fuzz stayed signed in ({len(signed_out)} operations only refused)")
