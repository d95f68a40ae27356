## The ABI check (Tests/abi/README.md): `make abi-check` compares the C ABI of include/nudge.h, as
## libnudge.so exports it, with the committed baseline Tests/abi/libnudge.abi and fails on a change
## that could break programs already linked against libnudge.so.ABI. `make abi-baseline` records
## the baseline again, on purpose: after compatible additions, or with a new ABI version.
.PHONY: abi-check abi-baseline abi-tool

# After lib: two SwiftPM builds at once in one .build would wait on each other's lock under make -j.
abi-tool: lib
	$(SWIFT) build -c release --product nudge-header

abi-check: deps-test lib abi-tool
	NUDGE_HEADER=$(BUILD)/nudge-header bash Tests/abi/abi.sh check $(LIB)

abi-baseline: deps-test lib abi-tool
	NUDGE_HEADER=$(BUILD)/nudge-header bash Tests/abi/abi.sh baseline $(LIB)
