## Installing Nudge where other programs' builds find it (docs/INSTALL.md). Included by the Makefile,
## which defines SWIFT, BUILD, LIB, CLI and the `lib` and `cli` targets.
##
##   make install       the library (with its soname and symlinks), nudge.h, nudge.pc, the CMake
##                      package Nudge, the `nudge` tool with its bash and zsh completions and man page
##   make uninstall     removes exactly what make install put there (its manifest says what)
##   make install-build builds everything make install copies (then `sudo make install` builds nothing)
##   make test-install  installs into a temporary prefix and builds a C program against it: with
##                      pkg-config, with CMake, and with plain -lnudge through the loader's cache
##
## The directories follow the GNU conventions, in either spelling (upper case wins when both are given):
##   make install PREFIX=/opt/nudge              (default /usr/local)
##   make install DESTDIR=/tmp/stage PREFIX=/usr  (a packager's staging root, never recorded in the files)
##   LIBDIR, INCLUDEDIR, BINDIR, DATAROOTDIR, MANDIR, PKGCONFIGDIR, CMAKEDIR, BASHCOMPDIR, ZSHCOMPDIR
##   (e.g. LIBDIR=/usr/lib/x86_64-linux-gnu)
#
# The soname. The installed library is lib/libnudge.so.A.X.Y.Z with soname libnudge.so.A, where A is
# NUDGE_ABI_VERSION and X.Y.Z the release, all read from include/nudge.h (docs/INSTALL.md says why).
# The soname is set on the installed copy only (patchelf --set-soname, in bindings/c/install.sh), not
# at link time in Package.swift:
# - In the tree, .build/release/libnudge.so stays what every in-tree consumer already links and
#   loads: the C harness, the demo and the reliability programs (-lnudge and an rpath), the bench
#   (which copies the file under its own name), the Python package (by path), the sanitizer and fuzz
#   builds (their own copies in .build/*-lib and .build/fuzz) and the ABI check. A link-time soname
#   would make each of those programs record NEEDED libnudge.so.A and need a libnudge.so.A symlink
#   beside every one of those builds.
# - The soname would have to be written into Package.swift, or read there from the header. SwiftPM
#   caches its evaluation of the manifest, so a changed ABI version could leave a stale soname; and
#   a flag from the Makefile (-Xlinker -soname) would make `swift build` and `make lib` differ.
# make test-install checks the installed library (readelf: SONAME, no RUNPATH) and programs built
# against it (NEEDED libnudge.so.A).

prefix       ?= /usr/local
PREFIX       ?= $(prefix)
exec_prefix  ?= $(PREFIX)
EXEC_PREFIX  ?= $(exec_prefix)
bindir       ?= $(EXEC_PREFIX)/bin
BINDIR       ?= $(bindir)
libdir       ?= $(EXEC_PREFIX)/lib
LIBDIR       ?= $(libdir)
includedir   ?= $(PREFIX)/include
INCLUDEDIR   ?= $(includedir)
datarootdir  ?= $(PREFIX)/share
DATAROOTDIR  ?= $(datarootdir)
mandir       ?= $(DATAROOTDIR)/man
MANDIR       ?= $(mandir)
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR     ?= $(LIBDIR)/cmake/Nudge
# Where bash-completion and zsh look under a prefix (for /usr/local both do by default).
BASHCOMPDIR  ?= $(DATAROOTDIR)/bash-completion/completions
ZSHCOMPDIR   ?= $(DATAROOTDIR)/zsh/site-functions
DESTDIR      ?=

# What the tool contributes, generated from the built tool itself.
INSTALL_OUT  := .build/install
INSTALL_MAN  := $(INSTALL_OUT)/nudge.1
INSTALL_BASH := $(INSTALL_OUT)/nudge.bash
INSTALL_ZSH  := $(INSTALL_OUT)/_nudge
INSTALL_BUILT := $(LIB) $(CLI) $(INSTALL_MAN) $(INSTALL_BASH) $(INSTALL_ZSH)

INSTALL_ENV = env DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" EXEC_PREFIX="$(EXEC_PREFIX)" \
    BINDIR="$(BINDIR)" LIBDIR="$(LIBDIR)" INCLUDEDIR="$(INCLUDEDIR)" DATAROOTDIR="$(DATAROOTDIR)" \
    MANDIR="$(MANDIR)" PKGCONFIGDIR="$(PKGCONFIGDIR)" CMAKEDIR="$(CMAKEDIR)" \
    BASHCOMPDIR="$(BASHCOMPDIR)" ZSHCOMPDIR="$(ZSHCOMPDIR)" \
    NUDGE_LIB="$(LIB)" NUDGE_CLI="$(CLI)" NUDGE_HEADER=include/nudge.h \
    NUDGE_MAN="$(INSTALL_MAN)" NUDGE_BASH="$(INSTALL_BASH)" NUDGE_ZSH="$(INSTALL_ZSH)"

.PHONY: install uninstall install-build test-install deps-install

deps-install:
	@.ci/ensure-deps.sh build install

install-build: $(INSTALL_BUILT)

install: deps-install $(INSTALL_BUILT)
	@$(INSTALL_ENV) bash bindings/c/install.sh install

uninstall:
	@$(INSTALL_ENV) bash bindings/c/install.sh uninstall

# The tool, rebuilt when a source it is built from changed (`make cli` builds it unconditionally).
$(CLI): $(wildcard Sources/nudge-cli/*.swift Sources/Nudge/*.swift Sources/Nudge/*/*.swift) Package.swift
	$(MAKE) cli

# swift-argument-parser writes the completion scripts from the tool's own flags.
$(INSTALL_BASH): $(CLI)
	@mkdir -p $(@D)
	$(CLI) --generate-completion-script bash > $@.tmp && mv $@.tmp $@
$(INSTALL_ZSH): $(CLI)
	@mkdir -p $(@D)
	$(CLI) --generate-completion-script zsh > $@.tmp && mv $@.tmp $@

# The man page, from swift-argument-parser's generate-manual plugin (a SwiftPM command plugin of the
# package's own dependency, built locally: it builds the package's products in release mode and
# reads the tool's help). Its blank lines become .Pp paragraph breaks, which man reads without the
# "mdoc warning: Empty input line" it prints for each blank one. Dated by SOURCE_DATE_EPOCH or the
# last commit, so that a rebuild of the same sources gives the same page.
MAN_PLUGIN_OUT := .build/plugins/GenerateManual/outputs/nudge-cli/nudge.1
MAN_DATE = $(shell if [ -n "$$SOURCE_DATE_EPOCH" ]; then date -u -d "@$$SOURCE_DATE_EPOCH" +%F; \
    else git log -1 --format=%cs 2>/dev/null; fi)
$(INSTALL_MAN): $(CLI)
	@mkdir -p $(@D)
	rm -f $(MAN_PLUGIN_OUT)
	$(SWIFT) package generate-manual $(if $(MAN_DATE),--date $(MAN_DATE))
	sed 's/^$$/.Pp/' $(MAN_PLUGIN_OUT) > $@.tmp && mv $@.tmp $@

test-install: $(INSTALL_BUILT)
	@.ci/ensure-deps.sh build install test-install
	MAKE="$(MAKE)" bash Tests/install/run.sh
