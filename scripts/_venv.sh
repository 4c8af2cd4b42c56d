# Sourced by scripts/*.sh: create .venv if missing and install the project into it.
# Usage: ensure_venv EXTRAS   (e.g. "test" or "science")
_pip() {
    # pip lists every local index it skips as a warning; keep only real problems.
    .venv/bin/python -m pip "$@" 2>&1 | grep -v "^WARNING: Location" >&2 || true
}
ensure_venv() {
    local extras="$1"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    local stamp=".venv/.installed-${extras}"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "installing gitmodel[${extras}] and its dependencies into .venv ..." >&2
        _pip install -q ".[${extras}]"
        touch "$stamp"
    fi
    # A regular (not editable) install, refreshed every run: it also installs the man
    # page that `git model --help` opens, which editable installs leave out.
    _pip install -q --no-deps --force-reinstall .
    .venv/bin/python -c "import gitmodel, dvc" || { echo "install failed" >&2; exit 2; }
    export PATH="$PWD/.venv/bin:$PATH"
}
