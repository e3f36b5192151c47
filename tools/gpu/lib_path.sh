# Sourced by the tools/gpu scripts after /tmp/tg is unpacked: LD_LIBRARY_PATH for the carried binaries.
export LD_LIBRARY_PATH=/tmp/tg/lib
# libcublasLt.so.13 is not carried (pack.sh): when the binary's RUNPATH (the build machine's CUDA toolkit) does not
# find it here, take the image's toolkit's or the one in PyTorch's nvidia wheels.
if ldd /tmp/tg/bin/tandem | grep -q "libcublasLt.*not found"; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 \
      $(python3 -c 'import os, nvidia; print(" ".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p)))' 2>/dev/null); do
    if [ -e "$d/libcublasLt.so.13" ]; then export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d; echo "libcublasLt from $d"; break; fi
  done
fi
if ldd /tmp/tg/bin/tandem | grep -q "not found\|GLIBCXX.*not found" || ! /tmp/tg/bin/tandem --help >/dev/null 2>&1; then
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/tmp/tg/lib-fallback
fi
