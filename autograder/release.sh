#!/usr/bin/env bash
# Regenerate labs/ from solutions/ (nbgrader generate_assignment). Used by `make release`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"   # the autograder package
exec "$python" -m autograder.pipeline release "$@"
