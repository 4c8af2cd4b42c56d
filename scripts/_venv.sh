# Sourced by scripts/*.sh: create .venv if missing and install the project into it.
# Usage: ensure_venv EXTRAS   (e.g. "test" or "science")
ensure_venv() {
    local extras="$1"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    local stamp=".venv/.installed-${extras}"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "installing gitmodel[${extras}] into .venv ..." >&2
        # pip lists every local index it skips as a warning; keep only real problems.
        .venv/bin/python -m pip install -q -e ".[${extras}]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
        .venv/bin/python -c "import gitmodel, dvc" || { echo "install failed" >&2; exit 2; }
        touch "$stamp"
    fi
    export PATH="$PWD/.venv/bin:$PATH"
}
