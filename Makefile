# Everything a fresh Debian machine with the Swift toolchain needs: `make demo`, `make test`.
SWIFT ?= swift
DEBIAN_PACKAGES := docker-registry skopeo libzstd-dev zstd libsqlite3-dev sqlite3 zlib1g-dev openssl tar util-linux libcurl4-openssl-dev ceph-mon ceph-osd radosgw ceph-common time \
	dpkg-dev binutils systemd man-db bash-completion
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# In memory, so that the virtual disk's swings do not decide tar against regkeeper (needs ~5 GB free).
BACKUP_BENCH_DIR ?= /dev/shm/regkeeper-bench/backup

.PHONY: deps build test demo bench clean static install install-built uninstall install-manifest deb

# `make install`: where it puts things (`make install-manifest` lists every file). The units
# read $(SYSCONFDIR)/default/regkeeper, which install writes only if absent and uninstall
# removes only if unedited.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
POLICY_DIR ?= $(PREFIX)/share/regkeeper/policies
BASH_COMPLETION_DIR ?= $(PREFIX)/share/bash-completion/completions
ZSH_COMPLETION_DIR ?= $(PREFIX)/share/zsh/site-functions
FISH_COMPLETION_DIR ?= $(PREFIX)/share/fish/vendor_completions.d
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
# The installed and packaged binary: release, Swift runtime linked in, so that it runs where
# the toolchain is not. Its own scratch path keeps the ordinary release build (bench, demo).
STATIC_SCRATCH := .build-static
STATIC_BINARY := $(STATIC_SCRATCH)/release/regkeeper
INSTALL_SH = DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" SYSCONFDIR="$(SYSCONFDIR)" BINDIR="$(BINDIR)" MANDIR="$(MANDIR)" \
	POLICY_DIR="$(POLICY_DIR)" BASH_COMPLETION_DIR="$(BASH_COMPLETION_DIR)" ZSH_COMPLETION_DIR="$(ZSH_COMPLETION_DIR)" \
	FISH_COMPLETION_DIR="$(FISH_COMPLETION_DIR)" SYSTEMD_UNIT_DIR="$(SYSTEMD_UNIT_DIR)" BINARY="$(STATIC_BINARY)" \
	packaging/install.sh

deps:
	@missing=""; for package in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

# The .deb first: InstallTests install it, and `make install` the binary it was built from.
test: deps deb
	$(SWIFT) build --build-tests
	$(SWIFT) test

demo: deps
	$(SWIFT) build -c release --product regkeeper-demo
	.build/release/regkeeper-demo

bench: deps static
	$(SWIFT) build -c release
	.build/release/regkeeper-bench gc --sweep
	.build/release/regkeeper-bench gc --s3
	.build/release/regkeeper-bench retain
	.build/release/regkeeper-bench verify --regkeeper $(STATIC_SCRATCH)/release/regkeeper
	.build/release/regkeeper-bench pulls
	.build/release/regkeeper-bench backup --runs 5 --directory $(BACKUP_BENCH_DIR)

static: deps
	$(SWIFT) build -c release --product regkeeper --static-swift-stdlib --scratch-path $(STATIC_SCRATCH)

install: static
	$(INSTALL_SH) install

# `make install` of the binary already built, as the tests run it.
install-built:
	$(INSTALL_SH) install

uninstall:
	$(INSTALL_SH) uninstall

install-manifest:
	@$(INSTALL_SH) list

deb: static
	packaging/build-deb.sh $(STATIC_BINARY) $(STATIC_SCRATCH)

clean:
	rm -rf .build $(STATIC_SCRATCH)
