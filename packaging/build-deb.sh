#!/bin/sh
# `make deb`: a Debian package of the statically linked (Swift runtime) regkeeper, staged
# with `install.sh` at Debian's paths.
#
#   packaging/build-deb.sh BINARY OUTPUT-DIRECTORY
#
# Prints the path of the .deb it wrote.
set -eu
cd "$(dirname "$0")/.."
BINARY=$1
OUT=$2
VERSION=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
MAINTAINER=$(dpkg-parsechangelog -l packaging/debian/changelog -S Maintainer)
ARCH=$(dpkg --print-architecture)
built=$("$BINARY" --version)
[ "$built" = "$VERSION" ] || { echo "build-deb.sh: $BINARY is version $built, packaging/debian/changelog says $VERSION" >&2; exit 1; }

deb=$OUT/regkeeper_${VERSION}_$ARCH.deb
# Compressing the package takes a minute: not again when nothing that goes into it changed.
if [ -e "$deb" ] && [ -z "$(find "$BINARY" packaging man policies -newer "$deb" | head -1)" ]; then
    echo "$deb"
    exit 0
fi

WORK=$OUT/deb-work
STAGE=$WORK/regkeeper
rm -rf "$WORK"
mkdir -p "$STAGE/DEBIAN"

DESTDIR=$STAGE PREFIX=/usr SYSCONFDIR=/etc POLICY_DIR=/etc/regkeeper \
    SYSTEMD_UNIT_DIR=/lib/systemd/system ZSH_COMPLETION_DIR=/usr/share/zsh/vendor-completions \
    BINARY=$BINARY packaging/install.sh install >/dev/null
# install.sh leaves symbols in; Debian ships them stripped (separate -dbgsym packages).
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$STAGE/usr/bin/regkeeper"

doc=$STAGE/usr/share/doc/regkeeper
install -D -m 644 packaging/debian/copyright "$doc/copyright"
gzip -9n <packaging/debian/changelog >"$doc/changelog.gz"
chmod 644 "$doc/changelog.gz"
install -D -m 644 packaging/debian/lintian-overrides "$STAGE/usr/share/lintian/overrides/regkeeper"
# node_exporter's textfile directory, where the units write metrics (ReadWritePaths= needs it
# to exist); /var/backups/regkeeper is made by postinst (lintian: no directories in /var/backups).
install -d -m 755 "$STAGE/var/lib/prometheus/node-exporter"

# The libraries the binary really links, as Debian's own tool maps them to packages.
mkdir -p "$WORK/debian"
printf 'Source: regkeeper\n\nPackage: regkeeper\nArchitecture: any\n' >"$WORK/debian/control"
depends=$(cd "$WORK" && dpkg-shlibdeps -O regkeeper/usr/bin/regkeeper | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build-deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# libcurl is loaded on the first S3 request (dlopen), not linked, so dpkg-shlibdeps cannot see
# it: the dependency is the one libcurl4's own shlibs file gives for libcurl.so.4.
curl=$(awk '$1 == "libcurl" && $2 == "4" { $1 = $2 = ""; sub(/^ +/, ""); print; exit }' "$(dpkg-query --control-path libcurl4 shlibs)")
[ -n "$curl" ] || { echo "build-deb.sh: libcurl4's shlibs file names no libcurl.so.4" >&2; exit 1; }
depends="$depends, $curl"

(cd "$STAGE" && find etc -type f | sort | sed 's|^|/|') >"$STAGE/DEBIAN/conffiles"
install -m 755 packaging/debian/postinst packaging/debian/postrm "$STAGE/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@MAINTAINER@|$MAINTAINER|" \
    -e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$depends|" packaging/debian/control.in >"$STAGE/DEBIAN/control"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$STAGE/DEBIAN/md5sums"
chmod 644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/conffiles" "$STAGE/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$deb" >/dev/null
rm -rf "$WORK"
echo "$deb"
