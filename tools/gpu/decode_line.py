"""One line from `tandem bench --json` on stdin: variant, label, decode tok/s, achieved GB/s, fraction of copy."""
import json
import sys

j = json.load(sys.stdin)
d = j.get("decode", {})
copy = j.get("machine", {}).get("copy_bandwidth_gbs", 0)
print(f"{sys.argv[1]:5} {sys.argv[2]:10} decode {d.get('tokens_per_s', 0):9.1f} tok/s  {d.get('achieved_gbs', 0):7.0f} GB/s"
      f"  {d.get('fraction_of_copy_bandwidth', 0):.3f} of copy ({copy:.0f} GB/s)")
