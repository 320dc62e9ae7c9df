#!/usr/bin/env bash
# The man pages render without a single warning: `mandoc -T lint -W warning` and
# `groff -ww -man` (what `man -l` uses) must print nothing for each page.
# Usage: test_man.sh PAGE...
set -uo pipefail
command -v mandoc >/dev/null || { echo "test_man: mandoc is missing (scripts/install-deps.sh)"; exit 1; }
[ $# -gt 0 ] || { echo "usage: test_man.sh PAGE..."; exit 2; }
fail=0
for page in "$@"; do
  if [ ! -s "$page" ]; then echo "FAIL $page: missing or empty"; fail=1; continue; fi
  out=$(mandoc -T lint -W warning "$page" 2>&1)
  if [ -n "$out" ]; then echo "FAIL mandoc $page:"; echo "$out"; fail=1; fi
  out=$(groff -ww -man -Tutf8 -z "$page" 2>&1)
  if [ -n "$out" ]; then echo "FAIL groff $page:"; echo "$out"; fail=1; fi
  # A page that renders to almost nothing (a broken macro swallowing the text) fails too.
  lines=$(mandoc -T utf8 "$page" | wc -l)
  if [ "$lines" -lt 40 ]; then echo "FAIL $page: renders to $lines lines"; fail=1; fi
  [ $fail = 0 ] && echo "ok $page ($lines lines)"
done
exit $fail
