"""What each page's script costs a browser on a slow link, from the build's own metafile.

For every page script in ``static/dist`` (built by ``make assets``) it prints, gzipped as
sent: the first load (the script and everything it imports statically), each module it
fetches on demand (and what that pulls in), and the total had everything come at once;
with the seconds each takes at 1 Mbit/s, a township clinic's link on a good day.

    python bench/page_weight.py
"""

from __future__ import annotations

import json
from pathlib import Path

DIST = Path(__file__).resolve().parent.parent / "static" / "dist"
LINK_BITS_PER_SECOND = 1_000_000


def gz_size(output: str) -> int:
    path = DIST.parent.parent / f"{output}.gz"
    return path.stat().st_size if path.exists() else (DIST.parent.parent / output).stat().st_size


def closure(outputs: dict, start: str, kinds: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [i["path"] for i in outputs[name]["imports"] if i["kind"] in kinds]
    return seen


def on_demand_groups(outputs: dict, entry: str, first: set[str]):
    """The page's dynamic imports, those sharing a chunk merged (they come together)."""
    groups: list[tuple[list[str], set[str]]] = []
    for target in (i["path"] for i in outputs[entry]["imports"] if i["kind"] == "dynamic-import"):
        name = outputs[target].get("entryPoint", target).removeprefix("node_modules/")
        extra = closure(outputs, target, ("import-statement",)) - first
        for names, chunks in groups:
            if chunks & extra:
                names.append(name)
                chunks |= extra
                break
        else:
            groups.append(([name], extra))
    return groups


def seconds(size: int) -> float:
    return size * 8 / LINK_BITS_PER_SECOND


def main() -> None:
    meta = json.loads((DIST / "metafile.json").read_text())
    manifest = json.loads((DIST / "manifest.json").read_text())
    outputs = meta["outputs"]
    print(f"{'page script':<24}{'first load':>14}{'on demand':>14}{'all at once':>14}{'ratio':>8}")
    details = []
    for logical, file in sorted(manifest.items()):
        if not logical.endswith(".js"):
            continue
        entry = f"static/dist/{file}"
        first = closure(outputs, entry, ("import-statement",))
        everything = closure(outputs, entry, ("import-statement", "dynamic-import"))
        first_bytes = sum(gz_size(o) for o in first)
        all_bytes = sum(gz_size(o) for o in everything)
        later = all_bytes - first_bytes
        print(
            f"{logical:<24}{first_bytes / 1024:>11.1f} KB{later / 1024:>11.1f} KB"
            f"{all_bytes / 1024:>11.1f} KB{first_bytes / all_bytes:>8.2f}"
        )
        for names, extra in on_demand_groups(outputs, entry, first):
            size = sum(gz_size(o) for o in extra)
            details.append((logical, " + ".join(names), size))
    if details:
        print("\non demand (modules that share code counted together, beyond the first load):")
        for logical, names, size in details:
            print(f"  {logical:<14}{names:<62}{size / 1024:>7.1f} KB {seconds(size):5.1f} s")
    print(
        f"\nseconds are at {LINK_BITS_PER_SECOND / 1e6:g} Mbit/s;"
        " gzipped script bytes only (style sheets not counted)"
    )


if __name__ == "__main__":
    main()
