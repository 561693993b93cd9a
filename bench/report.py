#!/usr/bin/env python3
"""report.py BENCH.json TARGETS.txt [DEMO.json] — ntmm beside its peers.

Prints every benchmark's median (time per iteration and items/s), then one
row per target in TARGETS.txt: the ntmm figure, the peer's, their ratio and
whether the target holds. A target line reads
    area | what | time(A) <= 1.2 * time(B)      (or rate(A) >= 2 * rate(B))
with names as benchmark prints them without the /real_time decoration, or
    area | what | demo(a.b) <= 5 * demo(c.d)
for a figure of `ntmm demo --json` (DEMO.json), named by its JSON path in
nanoseconds. Exit status is 0 even when a target falls short: this is a
report."""
import json, re, sys

NOISE = re.compile(r"^(real_time|process_time|manual_time|min_time:.*|min_warmup_time:.*|iterations:.*|repeats:.*)$")

def canonical(name):
    return "/".join(p for p in name.split("/") if not NOISE.match(p))

def load(path):
    data = json.load(open(path))
    med = {}
    for b in data.get("benchmarks", []):
        if b.get("aggregate_name", "median") != "median":
            continue
        name = canonical(b.get("run_name") or b["name"])
        unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        med[name] = {"time": b["real_time"] * unit, "rate": b.get("items_per_second"),
                     "error": b.get("error_message")}
    return med

def fmt_rate(v):
    if v is None:
        return "-"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.2f}{suf}/s"
    return f"{v:.1f}/s"

def demo_value(demo, path):
    v = demo
    for key in path.split("."):
        if not isinstance(v, dict) or key not in v:
            return None
        v = v[key]
    return float(v) if isinstance(v, (int, float)) else None

def main():
    med = load(sys.argv[1])
    demo = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else None
    print(f"{'benchmark (median)':<46} {'time/iter':>12} {'items/s':>12}")
    for name, m in med.items():
        if m["error"]:
            print(f"{name:<46} {'skipped: ' + m['error']}")
        else:
            print(f"{name:<46} {m['time']:>10.1f}ns {fmt_rate(m['rate']):>12}")
    print()
    rows = []
    for line in open(sys.argv[2]):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        area, what, cond = [x.strip() for x in line.split("|", 2)]
        m = re.fullmatch(r"(time|rate|demo)\(([^)]+)\)\s*(<=|>=)\s*([0-9.]+)\s*\*\s*(time|rate|demo)\(([^)]+)\)", cond)
        if not m or (m.group(1) == "demo") != (m.group(5) == "demo"):
            rows.append((area, what, "-", "-", "-", cond, "BAD TARGET"))
            continue
        ka, a, op, k, kb, b = m.groups()
        if ka == "demo":
            va, vb = (demo_value(demo, a), demo_value(demo, b)) if demo else (None, None)
            if va is None or not vb:
                rows.append((area, what, "-", "-", "-", f"{op} {k}", "not run"))
                continue
            ratio = va / vb
            good = ratio <= float(k) if op == "<=" else ratio >= float(k)
            rows.append((area, what, f"{va:.0f}ns", f"{vb:.0f}ns", f"{ratio:.3g}x", f"{op} {k}",
                         "ok" if good else "SHORT"))
            continue
        ma, mb = med.get(canonical(a)), med.get(canonical(b))
        show = (lambda v: fmt_rate(v)) if ka == "rate" else (lambda v: f"{v:.1f}ns")
        # a side that ran is shown even when the other did not (or was skipped)
        va = ma[ka] if ma and not ma["error"] else None
        vb = mb[kb] if mb and not mb["error"] else None
        if va is None or not vb:
            why = "skipped" if (ma and ma["error"]) or (mb and mb["error"]) else "not run"
            rows.append((area, what, "-" if va is None else show(va), "-" if vb is None else show(vb),
                         "-", f"{op} {k}", why))
            continue
        ratio = va / vb
        good = ratio <= float(k) if op == "<=" else ratio >= float(k)
        rows.append((area, what, show(va), show(vb), f"{ratio:.3g}x", f"{op} {k}", "ok" if good else "SHORT"))
    hdr = ("area", "ntmm vs peer", "ntmm", "peer", "ratio", "target", "")
    widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(hdr, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths)))

main()
