#!/usr/bin/env bash
# Mutation testing of the core with mutmut: not part of CI (it takes minutes per module).
#
#   bench/mutation.sh                 # every module below, one after another
#   bench/mutation.sh watchdog sync   # only these
#   JOBS=1 bench/mutation.sh dfs      # one mutant at a time (default 2: the cores here)
#
# The configuration is [tool.mutmut] in pyproject.toml: which files are mutated and the
# fast, in-process subset of the suite that must kill each mutant. mutmut keeps its work in
# mutants/ (git-ignored) and re-tests only the functions that changed since the last run,
# so re-running after an edit is quick; `rm -rf mutants` starts afresh. It ends with the
# kill rate per module (bench/mutation_report.py): mutants listed in
# bench/mutation_equivalent.md are set aside, with the reason given there. Inspect a
# survivor with `.venv/bin/python -m mutmut show NAME`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -c 'import mutmut' 2>/dev/null || "$PY" -m pip install --quiet 'mutmut>=3.8,<4'

declare -A MODULE=(
  [watchdog]=vmemu._kernel.watchdog [sync]=vmemu._kernel.sync [gfp]=vmemu._kernel._gfp
  [reclaim]=vmemu._kernel._reclaim [graph]=vmemu._lockdep.graph
  [pct]=vmemu._strategies.pct [dfs]=vmemu._strategies.dfs
  [kernel]=vmemu._kernel.kernel [task]=vmemu._kernel.task [waitqueue]=vmemu._kernel.waitqueue
  [values]=vmemu._kernel._values [kthread]=vmemu._kernel.kthread
  [direct]=vmemu._kernel.drivers.direct
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(watchdog sync gfp reclaim graph pct dfs)
mkdir -p mutants
for name in "${names[@]}"; do
  module=${MODULE[$name]:?"unknown module '$name'; choose from: ${!MODULE[*]}"}
  echo "== $name ($module): log in mutants/run-$name.log"
  # mutmut's progress line is one long line of carriage returns: keep it out of the way.
  "$PY" -m mutmut run --max-children "${JOBS:-2}" "$module.*" > "mutants/run-$name.log" 2>&1 \
    || { echo "mutmut failed on $name: see mutants/run-$name.log"; tail -5 "mutants/run-$name.log"; exit 1; }
done
"$PY" bench/mutation_report.py "${names[@]}"
