// Include first in every *_avx512.cpp. GCC 12's AVX-512 intrinsics fill their pass-through operand with
// _mm512_undefined_*(), a self-initialised local that -Wuninitialized / -Wmaybe-uninitialized flag at every
// inlined use (GCC bug 105593, false positives). Silenced for the AVX-512 translation units only.
#pragma once

#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
