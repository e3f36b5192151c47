#!/usr/bin/env bash
# Packs what tools/gpu/run_checks.sh runs on a GPU machine into gpu-carry/ (ignored by git; the device tool's
# `carry` takes it along): the CUDA build's tandem binary and GPU test binaries, stripped, plus the shared
# libraries they load that a bare GPU image may lack, as one xz archive. The GPU machines have no package
# registry, so building there would need every build dependency carried; carrying the binaries needs only
# these few libraries. Usage: tools/gpu/pack.sh [BUILD_DIR]   (default build; needs a TANDEM_CUDA build)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
TESTS=${TESTS:-"backend_ops_test glm4_moe_golden_test spec_decode_test seeded_identity_test batch_invariance_test
       trained_acceptance_test server_api_test dummy_load_test row_split_test prefix_cache_engine_test
       prefix_cache_server_test"}
stage=$(mktemp -d)
mkdir -p "$stage/bin" "$stage/lib" "$stage/lib-fallback"
for b in tandem $TESTS; do
  test -x "$BUILD/bin/$b" || { echo "pack: $BUILD/bin/$b missing (build it with TANDEM_CUDA)"; exit 1; }
  strip -o "$stage/bin/$b" "$BUILD/bin/$b"
done
# BASE_TANDEM=path: a `tandem` of the tree before, packed as bin/tandem-base for A/B runs (tools/gpu/ab_decode.sh);
# it shares most bytes with bin/tandem, so it costs little in the one xz stream.
if [ -n "${BASE_TANDEM:-}" ]; then strip -o "$stage/bin/tandem-base" "$BASE_TANDEM"; fi
# Libraries outside glibc that the binaries load; libstdc++ goes to a fallback folder used only when the
# machine's own is older than the one these binaries were linked against.
for lib in $(ldd "$BUILD/bin/tandem" "$BUILD/bin/server_api_test" | awk '/=> \//{print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libgcc_s.so*|ld-linux*) ;;
    libstdc++.so*) cp -L "$lib" "$stage/lib-fallback/" ;;
    # cuBLAS(Lt) (the prefill GEMM) is over 500 MB, past what a device call carries: run_checks.sh takes the GPU
    # image's own (its CUDA toolkit, or PyTorch's nvidia wheels).
    libcublasLt.so*|libcublas.so*) ;;
    *) cp -L "$lib" "$stage/lib/" ;;
  esac
done
mkdir -p gpu-carry
# One xz stream with a dictionary larger than all binaries together: they share most bytes (the CUDA kernels
# and the libraries are linked into each), so each later copy costs little.
tar -C "$stage" -cf - . | xz -T1 -6 --lzma2=preset=6,dict=256MiB > gpu-carry/tandem-gpu.tar.xz
rm -rf "$stage"
ls -la gpu-carry/tandem-gpu.tar.xz
