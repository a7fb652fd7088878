# Everything a fresh Debian machine with the Swift toolchain needs: `make demo`, `make test`.
SWIFT ?= swift
DEBIAN_PACKAGES := docker-registry skopeo libzstd-dev zstd libsqlite3-dev sqlite3 openssl tar util-linux libcurl4-openssl-dev ceph-mon ceph-osd radosgw ceph-common time
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# In memory, so that the virtual disk's swings do not decide tar against regkeeper (needs ~5 GB free).
BACKUP_BENCH_DIR ?= /dev/shm/regkeeper-bench/backup

.PHONY: deps build test demo bench clean

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

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

demo: deps
	$(SWIFT) build -c release --product regkeeper-demo
	.build/release/regkeeper-demo

bench: deps
	$(SWIFT) build -c release
	.build/release/regkeeper-bench gc --sweep
	.build/release/regkeeper-bench gc --s3
	.build/release/regkeeper-bench retain
	.build/release/regkeeper-bench verify
	.build/release/regkeeper-bench backup --runs 5 --directory $(BACKUP_BENCH_DIR)

clean:
	rm -rf .build
