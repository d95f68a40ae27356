#!/usr/bin/env python3
"""The current ABI as a program built against the baseline sees it: the appendix rule.

Usage: old_callers.py BASELINE CURRENT OUTPUT

Reads two ABI descriptions written by abidw (abixml) and writes CURRENT to OUTPUT with one change:
a struct that the baseline versions by its size, that is whose first field is `struct_size` (the
header's convention for options and reports), and that has gained fields after all of the
baseline's, loses those new fields and takes back the baseline's size. A caller built against the
baseline passes or receives the struct through a pointer together with its struct_size, so the
library never touches the fields it does not know; abidiff then compares everything that caller
does see, as it would for any other type. Anything else about such a struct, a field removed,
reordered, retyped or inserted before the end, or the struct shrinking, stays in the output for
abidiff to report. Prints one line per struct that grew this way.

libabigail's own suppression for this (`has_data_member_inserted_at = end`) is not used: in
libabigail 2.2 it also hides a reordered field and a field whose type changed in place, as long
as the struct has not lost a field (Tests/abi/README.md shows it).
"""

import sys
import xml.etree.ElementTree as ET


def structs(root):
    """The defined structs of an abixml corpus by name (declarations without fields are skipped)."""
    return {
        decl.get("name"): decl
        for decl in root.iter("class-decl")
        if decl.get("is-struct") == "yes" and decl.find("data-member") is not None
    }


def field_name(member):
    return member.find("var-decl").get("name")


def offsets(members):
    return [m.get("layout-offset-in-bits") for m in members]


def is_versioned(struct):
    first = struct.find("data-member")
    return first.get("layout-offset-in-bits") == "0" and field_name(first) == "struct_size"


def main(baseline_path, current_path, output_path):
    baseline = structs(ET.parse(baseline_path).getroot())
    tree = ET.parse(current_path)
    current = structs(tree.getroot())
    for name, old in sorted(baseline.items()):
        new = current.get(name)
        if new is None or not is_versioned(old):
            continue
        old_fields = old.findall("data-member")
        new_fields = new.findall("data-member")
        old_size = int(old.get("size-in-bits"))
        if len(new_fields) <= len(old_fields) or int(new.get("size-in-bits")) < old_size:
            continue
        # The new struct must open with as many fields at the baseline's offsets for the others to
        # count as appended; their names and types are abidiff's to compare, as for any struct.
        if offsets(new_fields[:len(old_fields)]) != offsets(old_fields):
            continue
        appended = new_fields[len(old_fields):]
        for member in appended:
            new.remove(member)
        new.set("size-in-bits", str(old_size))
        print(f"{name}: appended {', '.join(field_name(m) for m in appended)} "
              f"(seen by older callers as the baseline's {old_size // 8} bytes)")
    tree.write(output_path, encoding="unicode")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    main(*sys.argv[1:])
