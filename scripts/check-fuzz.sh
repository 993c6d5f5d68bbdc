#!/usr/bin/env bash
# Fuzzes every decoder of outside input for a short, bounded time with cargo-fuzz (libFuzzer):
# page cursors, the Idempotency-Key header, email addresses and phone numbers, and the Kafka
# message envelopes (fuzz/fuzz_targets/, each exercising shop-domain only). Every target starts
# from a copy of its seed corpus (fuzz/corpus/<target>/), so a run leaves the repository as it
# was. A crash or a broken property fails the script; the input that did it is kept in
# fuzz/artifacts/<target>/ and cargo-fuzz prints how to reproduce it.
# FUZZ_SECONDS sets the time per target (default 15); FUZZ_TARGETS names a subset.
#
# Runs on the stable toolchain: with `--sanitizer none` cargo-fuzz gives rustc only stable flags
# (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-…, --cfg fuzzing) and no -Z flag, so
# neither nightly nor RUSTC_BOOTSTRAP is needed. (The sanitizers, `-Zsanitizer=…`, would need
# them; the decoders are safe Rust, so they would find little more.)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

CARGO_FUZZ_VERSION=0.13.2
CARGO_FUZZ_ROOT="$SHOP_TOOLS_DIR/cargo-fuzz-$CARGO_FUZZ_VERSION"
seconds=${FUZZ_SECONDS:-15}
read -r -a targets <<<"${FUZZ_TARGETS:-cursor idempotency_key contact messages}"

# libfuzzer-sys compiles libFuzzer's C++ sources.
command -v c++ >/dev/null || apt_install g++
if [ ! -x "$CARGO_FUZZ_ROOT/bin/cargo-fuzz" ]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install) into $CARGO_FUZZ_ROOT once; this takes a few minutes"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$CARGO_FUZZ_ROOT" --quiet
fi
export PATH="$CARGO_FUZZ_ROOT/bin:$PATH"

# fuzz/ is a workspace of its own with its own lock file. cargo-fuzz runs cargo without --locked,
# so check here that the committed lock file still resolves as it is.
[ -f fuzz/Cargo.lock ] ||
  die "fuzz/Cargo.lock is missing: run 'cargo generate-lockfile --manifest-path fuzz/Cargo.toml' and commit it"
host=$(rustc -vV | sed -n 's/^host: //p')
cargo fetch --locked --manifest-path fuzz/Cargo.toml --target "$host" --quiet ||
  die "fuzz/Cargo.lock is out of date: run 'cargo update --manifest-path fuzz/Cargo.toml --workspace' and commit it"

build=(--fuzz-dir fuzz --sanitizer none)
log "building the fuzz targets (instrumented for coverage; stable toolchain)"
cargo fuzz build "${build[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
  [ -d "fuzz/corpus/$target" ] || die "fuzz target $target has no seed corpus in fuzz/corpus/$target"
  cp -R "fuzz/corpus/$target" "$work/$target"
  # -timeout: seconds one input may take; -rss_limit_mb: memory the process may use.
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1)
  if [ -f "fuzz/dicts/$target.dict" ]; then args+=(-dict="$PWD/fuzz/dicts/$target.dict"); fi
  log "fuzzing $target for ${seconds}s from its $(find "$work/$target" -type f | wc -l) seed inputs"
  if ! cargo fuzz run "${build[@]}" "$target" "$work/$target" -- "${args[@]}"; then
    failed+=("$target")
  fi
done
[ ${#failed[@]} -eq 0 ] ||
  die "fuzzing failed for: ${failed[*]} (failing inputs in fuzz/artifacts/<target>/; reproduce as printed above)"
log "fuzzing found nothing in ${#targets[@]} targets, ${seconds}s each"
