#!/usr/bin/env bash
# Regenerates requirements/ci.lock, the versions .ci/run installs (through PIP_CONSTRAINT): a fresh
# venv, the same installs as .ci/run in the same order, then pip freeze. Run it from any directory
# with the Python that CI uses, and commit the new lock after a green .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PIP_CONSTRAINT  # the old lock must not hold the new one back

venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
# shellcheck disable=SC1091
source "$venv/bin/activate"
python -m pip install -q --upgrade pip
pip install -q torch==2.13.0
pip install -q -e '.[embed]'
pip install -q -e '.[test]'

{
  echo "# The versions .ci/run installs, as constraints (PIP_CONSTRAINT): CI gets the same packages every run."
  echo "# Made by requirements/lock.sh with $(python --version) on $(uname -sm), $(date -u +%Y-%m-%d): a fresh venv,"
  echo "# then what .ci/run installs (torch==2.13.0, '.[embed]', '.[test]'), then pip freeze --all --exclude-editable."
  echo "# Regenerate it after changing the dependencies in pyproject.toml: requirements/lock.sh"
  pip freeze --all --exclude-editable
} > requirements/ci.lock.new
mv requirements/ci.lock.new requirements/ci.lock
echo "wrote requirements/ci.lock ($(grep -vc '^#' requirements/ci.lock) packages)"
