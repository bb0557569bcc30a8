# m365fs - Microsoft 365 backup: engine library, m365fs, m365-connect,
# m365-snapshot.  `make help` lists the targets.

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
CC      ?= cc
CFLAGS  ?= -O2 -g
PYTHON  ?= /usr/bin/python3

WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wwrite-strings -Wformat=2 -Wvla $(if $(filter 1,$(WERROR)),-Werror)
SAN      = $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
           -fno-omit-frame-pointer)
PKGS     = fuse3 sqlite3 libcurl libcjson liblz4 libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = -std=c17 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -MMD -MP -pthread \
             -Iengine -Itools $(WARN) $(SAN) $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = -pthread $(SAN) $(LDFLAGS)
LIBS     = $(PKG_LIBS) -lm

# Sanitizer builds live apart, so switching never needs a `make clean`
# (ThreadSanitizer cannot share objects with the others).
BUILD ?= build$(if $(SANITIZE),-$(if $(findstring thread,$(SANITIZE)),tsan,san))

ENGINE_SRC   := $(sort $(wildcard engine/*/*.c))
ENGINE_OBJ   := $(ENGINE_SRC:%.c=$(BUILD)/%.o)
LIB          := $(BUILD)/libm365.a
CLI_SRC      := $(sort $(wildcard tools/common/*.c))
CLI_OBJ      := $(CLI_SRC:%.c=$(BUILD)/%.o)
FS_SRC       := $(sort $(wildcard fs/*.c))
CONNECT_SRC  := $(sort $(wildcard tools/connect/*.c))
SNAPSHOT_SRC := $(sort $(wildcard tools/snapshot/*.c))
UNIT_SRC     := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN     := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# drivers that the integration tests run against the emulator, not unit tests
UNIT_DRIVERS := $(BUILD)/tests/test_auth_emu $(BUILD)/tests/test_graphcli
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
MAN_PAGES    := $(sort $(wildcard contrib/man/*.[1-8]))
UNITS        := $(sort $(wildcard contrib/systemd/*.service contrib/systemd/*.timer contrib/systemd/*.mount))

BINS := $(if $(FS_SRC),$(BUILD)/bin/m365fs) \
        $(if $(CONNECT_SRC),$(BUILD)/bin/m365-connect) \
        $(if $(SNAPSHOT_SRC),$(BUILD)/bin/m365-snapshot)

DEPS_STAMP = $(BUILD)/.deps-build
TEST_STAMP = $(BUILD)/.deps-test

.PHONY: all help check check-unit check-integration check-tsan check-fuzz fuzz demo \
        demo-stop bench install uninstall clean format format-check deps
.DEFAULT_GOAL := all

all: $(BINS) $(UNIT_BIN)

help:
	@echo "targets: all check check-unit check-integration check-tsan check-fuzz demo demo-stop"
	@echo "         bench install uninstall clean format format-check"
	@echo "options: WERROR=1  SANITIZE=address,undefined  PREFIX=  DESTDIR="
	@echo "         TESTS='-k expr' (passed to pytest)"

# Dependencies: installed (as root) or named (otherwise) before building.
$(DEPS_STAMP): tools/deps.sh
	@sh tools/deps.sh build
	@mkdir -p $(@D) && touch $@
$(TEST_STAMP): tools/deps.sh
	@sh tools/deps.sh test
	@mkdir -p $(@D) && touch $@
deps: $(DEPS_STAMP) $(TEST_STAMP)

# On a machine without the libraries pkg-config printed nothing: install
# them first (the stamp below is an included makefile, so make re-reads this
# file and pkg-config runs again), unless the goals need no compiler.
NODEPS_GOALS = clean help format format-check uninstall demo-stop
ifeq ($(PKG_LIBS),)
ifeq ($(MAKE_RESTARTS),)
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
include $(BUILD)/.deps-build.mk
endif
endif
endif
$(BUILD)/.deps-build.mk: tools/deps.sh
	@sh tools/deps.sh build
	@mkdir -p $(@D) && touch $(DEPS_STAMP) && echo '# build dependencies installed' >$@

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# keep the unit tests' objects: a rebuild then relinks only what changed
.SECONDARY: $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.o)

$(LIB): $(ENGINE_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/bin/m365fs: $(FS_SRC:%.c=$(BUILD)/%.o) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/bin/m365-connect: $(CONNECT_SRC:%.c=$(BUILD)/%.o) $(CLI_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/bin/m365-snapshot: $(SNAPSHOT_SRC:%.c=$(BUILD)/%.o) $(CLI_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Tests.  Unit tests: one program per module, exit 77 = skipped.
check: check-unit check-integration check-fuzz

check-unit: $(UNIT_BIN) | $(TEST_STAMP)
	@pass=0; fail=0; skip=0; \
	for t in $(filter-out $(UNIT_DRIVERS),$(UNIT_BIN)); do \
		out=$$(mktemp); \
		if $$t >$$out 2>&1; then rc=0; else rc=$$?; fi; \
		if [ $$rc -eq 0 ]; then pass=$$((pass+1)); echo "PASS $$t"; \
		elif [ $$rc -eq 77 ]; then skip=$$((skip+1)); echo "SKIP $$t"; cat $$out; \
		else fail=$$((fail+1)); echo "FAIL $$t (exit $$rc)"; cat $$out; fi; \
		rm -f $$out; \
	done; \
	echo "unit: $$pass passed, $$fail failed, $$skip skipped"; \
	[ $$fail -eq 0 ]

# The unit suites under ThreadSanitizer (store readers and writers, read
# holds, the snapshot pool), with address space randomisation off: TSan's
# fixed shadow layout does not fit the randomised mappings of recent
# kernels.
check-tsan:
	$(MAKE) -j2 SANITIZE=thread all
	setarch "$$(uname -m)" -R $(MAKE) SANITIZE=thread check-unit

check-integration: $(BINS) | $(TEST_STAMP)
	M365_BUILD=$(abspath $(BUILD)) M365_SANITIZE=$(SANITIZE) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider \
	  $(if $(findstring tests/,$(TESTS)),$(TESTS),tests/integration $(TESTS))

# Fuzz targets (libFuzzer, clang): built apart, each run briefly.
FUZZ_SECONDS ?= 10
FUZZ_CFLAGS = -std=c17 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -MMD -MP -g -O1 \
              -pthread -Iengine -fsanitize=fuzzer-no-link,address,undefined \
              $(PKG_CFLAGS)
FUZZ_OBJ := $(ENGINE_SRC:%.c=build-fuzz/%.o)
build-fuzz/engine/%.o: engine/%.c | $(TEST_STAMP)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -c -o $@ $<
build-fuzz/libm365.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^
build-fuzz/%: tests/fuzz/%.c build-fuzz/libm365.a | $(TEST_STAMP)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libm365.a \
	  $(PKG_LIBS) -lm
fuzz: $(FUZZ_BIN)
check-fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do \
		n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
		seeds=tests/fuzz/seeds/$$n; [ -d $$seeds ] || seeds=; \
		echo "fuzz $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
		    build-fuzz/corpus-$$n $$seeds >build-fuzz/$$n.log 2>&1 \
		  || { tail -n 60 build-fuzz/$$n.log; exit 1; }; \
	done

# The product end to end on the built-in demo tenant.
demo: $(BINS) | $(TEST_STAMP)
	M365_BUILD=$(abspath $(BUILD)) PYTHON=$(PYTHON) sh tools/demo.sh start
demo-stop:
	M365_BUILD=$(abspath $(BUILD)) PYTHON=$(PYTHON) sh tools/demo.sh stop

bench: $(BINS)
	@sh tools/deps.sh bench
	M365_BUILD=$(abspath $(BUILD)) PYTHON=$(PYTHON) sh bench/run.sh

install: $(BINS)
	install -d $(DESTDIR)$(BINDIR)
	$(if $(BINS),install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/)
	$(if $(MAN_PAGES),install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5)
	$(foreach m,$(MAN_PAGES),install -m 0644 $(m) $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/;)
	$(if $(UNITS),install -d $(DESTDIR)$(UNITDIR))
	$(if $(UNITS),install -m 0644 $(UNITS) $(DESTDIR)$(UNITDIR)/)

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(BINS)))
	$(foreach m,$(MAN_PAGES),rm -f $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m));)
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(UNITS)))

clean:
	rm -rf build build-san build-fuzz

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(C_FILES)
format-check:
	clang-format --dry-run --Werror $(C_FILES)

-include $(ENGINE_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(FS_SRC:%.c=$(BUILD)/%.d) \
         $(CONNECT_SRC:%.c=$(BUILD)/%.d) $(SNAPSHOT_SRC:%.c=$(BUILD)/%.d) \
         $(UNIT_SRC:%.c=$(BUILD)/%.d) $(FUZZ_OBJ:.o=.d) $(FUZZ_BIN:=.d)
