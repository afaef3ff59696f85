#!/usr/bin/env bash
# Autograde a folder or zip of submissions: feedback, grades/grades.csv, histograms.
#   autograder/grade.sh autograder/samples [--workers 2] [--wall-limit 300] [--cell-timeout 60]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"
if [ $# -lt 1 ]; then
  echo "usage: $0 SUBMISSIONS(folder or .zip) [--workers N] [--wall-limit S] [--cell-timeout S]" >&2
  exit 2
fi
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"   # the autograder package
exec "$python" -m autograder.pipeline grade "$@"
