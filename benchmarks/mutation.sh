#!/usr/bin/env bash
# Mutation testing of the engine's core modules with mutmut 3.
#
#   benchmarks/mutation.sh [--fresh] [MODULE ...]
#
# MODULE is any of: invariants tolerance settings search database diagnosis
# json_report edges chart weights compiled_path passed_preflights fill state_rules (default: all of them;
# state_rules, part of diagnosis, reads a layer's variables); MODULE@N runs a fixed random sample of
# N of that module's mutants (seed 13), for a module too large to run in full
# (diagnosis holds about 1750 mutants, some 100 minutes here).  --fresh deletes mutmut's cache
# (mutants/) first: do that after merging other branches, so that no result
# of a mutant of older code is reused.  MUTMUT names the mutmut executable
# (default: the one next to the python on PATH); MAX_CHILDREN the parallel
# workers (default 2).
#
# Which files are mutated and which tests run is configured in [tool.mutmut]
# in pyproject.toml; benchmarks/MUTATION.md holds the score and explains every
# surviving mutant.  In search.py only the seed, example-database and
# worst-error logic is mutated (the rest of the search is exercised by the
# model tests, which are too slow to run once per mutant).
set -euo pipefail
cd "$(dirname "$0")/.."

MUTMUT=${MUTMUT:-$(dirname "$(command -v python)")/mutmut}
MAX_CHILDREN=${MAX_CHILDREN:-2}
# mutmut puts its mutated copy (mutants/) first on sys.path; a PYTHONPATH
# pointing at the source tree would load the unmutated package instead.
unset PYTHONPATH

if [[ ${1:-} == --fresh ]]; then
    rm -rf mutants
    shift
fi

declare -A PATTERNS=(
    [invariants]="pytest_softmax.core.invariants.*"
    [tolerance]="pytest_softmax.tolerance.*"
    [settings]="pytest_softmax.settings.*"
    [search]="pytest_softmax.core.search.x__search__mutmut_* pytest_softmax.core.search.x__search_seed__mutmut_* pytest_softmax.core.search.x__search_settings__mutmut_* pytest_softmax.core.search.x__default_namespace__mutmut_* pytest_softmax.core.search.xǁ_OutputTrackerǁadd__mutmut_*"
    [database]="pytest_softmax.core.database.*"
    [diagnosis]="pytest_softmax.core.diagnosis.*"
    [json_report]="pytest_softmax.plugin.json_report.*"
    [edges]="pytest_softmax.core.inputs.edges.*"
    [chart]="pytest_softmax.core.chart.*"
    [weights]="pytest_softmax.core.weights.*"
    [compiled_path]="pytest_softmax.core.compiled_path.*"
    [passed_preflights]="pytest_softmax.core.passed_preflights.*"
    [fill]="pytest_softmax.core.inputs.fill.*"
    [state_rules]="pytest_softmax.core.diagnosis.state_rules.*"
)
modules=("$@")
if [[ ${#modules[@]} -eq 0 ]]; then
    modules=(invariants tolerance settings search database diagnosis json_report edges chart weights compiled_path passed_preflights fill)
fi
PYTHON="$(dirname "$MUTMUT")/python"
selected=()
for spec in "${modules[@]}"; do
    module=${spec%@*}
    [[ -n ${PATTERNS[$module]:-} ]] || { echo "unknown module $module; known: ${!PATTERNS[*]}" >&2; exit 2; }
    read -r -a globs <<< "${PATTERNS[$module]}"
    if [[ $spec == *@* ]]; then
        # The names exist once mutmut has generated the mutants; a pattern
        # matching no mutant makes it generate them and test nothing.
        [[ -d mutants ]] || "$MUTMUT" run "none.x_none" > mutants.log 2>&1 || true
        mapfile -t globs < <("$PYTHON" benchmarks/mutation_score.py --sample "${spec#*@}" "${globs[@]}")
    fi
    selected+=("${globs[@]}")
done

"$MUTMUT" run --max-children "$MAX_CHILDREN" "${selected[@]}" > mutants.log 2>&1 || {
    tail -50 mutants.log >&2; exit 1; }
"$PYTHON" benchmarks/mutation_score.py "${selected[@]}"
