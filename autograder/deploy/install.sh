#!/usr/bin/env bash
# Install the kit on a class server, as root (autograder/deploy/DEPLOY.md; tested by
# tests/test_deploy_permissions.py with real Unix users):
#
#   install.sh student-kit REPO DEST          the kit every student uses: the committed files of
#                                             REPO minus solutions/, the sample and attack
#                                             submissions (they hold solved labs), tests, CI and
#                                             .git (its history holds the solutions); owned by
#                                             root, read-only for everyone
#   install.sh course REPO GRADER DEST        the grading account's private course folder: a
#                                             clone of REPO (the instructors' private fork, with
#                                             solutions/) owned by GRADER, 0700, in a 0700 home
#
# REPO is a git repository (a path or URL) that root can read.
set -euo pipefail

#: Never in the students' kit (git pathspecs).
EXCLUDED=(solutions autograder/samples autograder/attacks tests benchmarks .ci .github)

usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

student_kit() {
  local repo="$1" dest="$2" spec=()
  for path in "${EXCLUDED[@]}"; do spec+=(":(exclude)$path"); done
  mkdir -p "$dest"
  if [ -n "$(ls -A "$dest")" ]; then
    echo "error: $dest is not empty (remove it first: the kit is installed from scratch)" >&2
    exit 1
  fi
  git -c safe.directory='*' -C "$repo" archive --format=tar HEAD -- . "${spec[@]}" | tar -x -C "$dest"
  local leaks
  leaks="$(grep -rlE '^[ #"]*### (BEGIN (SOLUTION|HIDDEN TESTS))' "$dest" || true)"
  if [ -n "$leaks" ]; then
    rm -rf "$dest"
    echo "error: refusing to install a kit whose files hold solutions or hidden tests:" >&2
    echo "$leaks" >&2
    exit 1
  fi
  chown -R root:root "$dest"
  chmod -R u=rwX,go=rX "$dest"
  echo "installed the students' kit in $dest (no solutions, no history, read-only for users)"
}

course() {
  local repo="$1" grader="$2" dest="$3" home
  home="$(getent passwd "$grader" | cut -d: -f6)"
  if [ -z "$home" ]; then
    echo "error: no user $grader (create it first: useradd --create-home --user-group $grader)" >&2
    exit 1
  fi
  chmod 0700 "$home"
  git -c safe.directory='*' clone --quiet "$repo" "$dest"     # as root, who can read REPO
  chown -R "$grader:$(id -gn "$grader")" "$dest"
  chmod 0700 "$dest"
  echo "cloned the course into $dest for $grader (0700; its home $home is 0700)"
}

case "${1:-}" in
  student-kit) [ $# -eq 3 ] || usage; student_kit "$2" "$3" ;;
  course) [ $# -eq 4 ] || usage; course "$2" "$3" "$4" ;;
  *) usage ;;
esac
