#!/usr/bin/env python3
"""Set options in an OpenStack ini file in place, keeping its comments and layout.

    ini-set.py FILE SECTION.KEY=VALUE ...

An uncommented KEY in SECTION is replaced (every occurrence: the first one takes the
value, the others are dropped); otherwise `KEY = VALUE` goes right after the section
header; a missing section is appended. The lab uses it on compute hosts' nova.conf,
which has no crudini (the controller image has).
"""
import re
import sys


def main():
    path, *assignments = sys.argv[1:]
    with open(path) as f:
        lines = f.read().splitlines()
    for a in assignments:
        target, value = a.split("=", 1)
        section, key = target.rsplit(".", 1)
        lines = set_option(lines, section, key, value)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def set_option(lines, section, key, value):
    new = f"{key} = {value}".rstrip()
    key_re = re.compile(r"\s*" + re.escape(key) + r"\s*=")
    out, current, header_at, done = [], None, None, False
    for line in lines:
        m = re.match(r"\s*\[([^\]]+)\]\s*$", line)
        if m:
            current = m.group(1)
            out.append(line)
            if current == section and header_at is None:
                header_at = len(out)
            continue
        if current == section and key_re.match(line):
            if not done:
                out.append(new)
                done = True
            continue
        out.append(line)
    if done:
        return out
    if header_at is None:
        return out + ["", f"[{section}]", new]
    return out[:header_at] + [new] + out[header_at:]


if __name__ == "__main__":
    main()
