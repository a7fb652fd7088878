#!/bin/sh
# `make install`, `make uninstall`, `make install-manifest` and the .deb's staging tree: one
# list of what is installed where (`entries`), so that uninstall removes exactly what install
# wrote and the tests check the same list.
#
#   packaging/install.sh list|install|uninstall
#
# Paths come from the environment (the Makefile passes them): DESTDIR, PREFIX, BINDIR,
# MANDIR, SYSCONFDIR, POLICY_DIR, BASH_COMPLETION_DIR, ZSH_COMPLETION_DIR,
# FISH_COMPLETION_DIR, SYSTEMD_UNIT_DIR, and BINARY, the built regkeeper to install.
set -eu

cd "$(dirname "$0")/.."
: "${DESTDIR=}" "${PREFIX:=/usr/local}" "${SYSCONFDIR:=/etc}"
: "${BINDIR:=$PREFIX/bin}" "${MANDIR:=$PREFIX/share/man}"
: "${POLICY_DIR:=$PREFIX/share/regkeeper/policies}"
: "${BASH_COMPLETION_DIR:=$PREFIX/share/bash-completion/completions}"
: "${ZSH_COMPLETION_DIR:=$PREFIX/share/zsh/site-functions}"
: "${FISH_COMPLETION_DIR:=$PREFIX/share/fish/vendor_completions.d}"
: "${SYSTEMD_UNIT_DIR:=$PREFIX/lib/systemd/system}"
: "${BINARY:=.build-static/release/regkeeper}"
ENVFILE=$SYSCONFDIR/default/regkeeper

# One line per installed file: KIND SOURCE DESTINATION (without DESTDIR).
entries() {
    echo "binary $BINARY $BINDIR/regkeeper"
    for page in man/*.1 man/*.5; do
        section=${page##*.}
        echo "man $page $MANDIR/man$section/${page#man/}.gz"
    done
    for policy in policies/*; do
        echo "data $policy $POLICY_DIR/${policy#policies/}"
    done
    echo "completion bash $BASH_COMPLETION_DIR/regkeeper"
    echo "completion zsh $ZSH_COMPLETION_DIR/_regkeeper"
    echo "completion fish $FISH_COMPLETION_DIR/regkeeper.fish"
    for unit in packaging/systemd/*; do
        name=${unit##*/}
        echo "unit $unit $SYSTEMD_UNIT_DIR/${name%.in}"
    done
    echo "config packaging/regkeeper.default.in $ENVFILE"
}

# Units and the environment file name the paths they are installed with.
render() {
    sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@ENVFILE@|$ENVFILE|g" -e "s|@POLICY_DIR@|$POLICY_DIR|g" "$1"
}

# Writes standard input to DESTDIR/$1 with mode $2, creating its directories.
put() {
    mkdir -p "$DESTDIR$(dirname "$1")"
    cat >"$DESTDIR$1.tmp"
    chmod "$2" "$DESTDIR$1.tmp"
    mv -f "$DESTDIR$1.tmp" "$DESTDIR$1"
}

install_all() {
    [ -x "$BINARY" ] || { echo "install.sh: no $BINARY: build it first (make install does)" >&2; exit 1; }
    entries | while read -r kind source target; do
        case $kind in
            binary) put "$target" 755 <"$source" ;;
            man) gzip -9n <"$source" | put "$target" 644 ;;
            data) put "$target" 644 <"$source" ;;
            completion)
                # Sourced, not run: no #! line (bash-completion's loader, lintian).
                script=$("$BINARY" --generate-completion-script "$source")
                script=$(printf '%s\n' "$script" | sed '1{/^#!/d}')
                printf '%s\n' "$script" | put "$target" 644 ;;
            unit) render "$source" | put "$target" 644 ;;
            config)
                # An operator's settings are never overwritten.
                if [ -e "$DESTDIR$target" ]; then
                    echo "kept $DESTDIR$target as it is"
                else
                    render "$source" | put "$target" 644
                fi ;;
        esac
    done
}

uninstall_all() {
    entries | while read -r kind source target; do
        [ -e "$DESTDIR$target" ] || continue
        if [ "$kind" = config ] && ! render "$source" | cmp -s - "$DESTDIR$target"; then
            echo "kept $DESTDIR$target: edited since it was installed"
            continue
        fi
        rm -f "$DESTDIR$target"
    done
    # The policies' directory is regkeeper's alone; the others (man1, completions) are shared.
    rmdir "$DESTDIR$POLICY_DIR" 2>/dev/null || true
    [ "${POLICY_DIR%/regkeeper/policies}" = "$POLICY_DIR" ] || rmdir "$DESTDIR${POLICY_DIR%/policies}" 2>/dev/null || true
}

case ${1-} in
    list) entries | while read -r kind source target; do echo "$target"; done ;;
    install) install_all ;;
    uninstall) uninstall_all ;;
    *) echo "usage: $0 list|install|uninstall" >&2; exit 64 ;;
esac
